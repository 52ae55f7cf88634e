"""What a race asks for and what it is told: the work of a round and its outcome."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Outcome", "Work"]


class Work(NamedTuple):
    """The instances of one round: ``model_ids[j]`` trains instance ``instances[j]`` on a
    training subset of ``train_sizes[j]`` events (``train_sizes=None``: each model's own
    ``train_size``). A round of a race has one size for all its instances (its stage's)."""

    model_ids: np.ndarray  # (W,) int64
    instances: np.ndarray  # (W,) int64
    train_sizes: np.ndarray | None = None  # (W,) int64, or None


class Outcome(NamedTuple):
    """What an evaluator reports for a ``Work`` list."""

    losses: np.ndarray  # (W,) float64: the test loss (non-finite: failed)
    metrics: dict[str, np.ndarray]  # name -> (W,): further test metrics (and "epochs")
    ok: np.ndarray  # (W,) bool: False for a failed instance
    seconds: float = 0.0  # training wall time, compilation excluded
    compile_seconds: float = 0.0
    instance_steps: int = 0  # optimizer steps, summed over the instances
    transformed: np.ndarray | None = None  # (W, T): the loss on each transformed test set
    pairs: tuple[tuple[str, float], ...] | None = None  # the T (transform, param) of the columns
