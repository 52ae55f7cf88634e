"""Preprocessing of populations: standardisation, log energies, one-hot labels.

Every function returns a *new* :class:`~jrobust.data.Population` with the same fixed
validation/test splits (they depend only on the number of events, the split sizes and the seed)
and records what it did in ``meta["preprocess"]`` (so it can be applied to new data or undone)
and the touched columns in ``meta["transformed"]``. Statistics are computed on the training pool
only, never on the validation or test events.

For the calorimeter (Boldyrev, Ratnikov, Shevelev, IEEE Access 2025), cell energies span
1-100 GeV: standardising the inputs, or taking the log of the energy target and of the total
energy, keeps the network's inputs and outputs of order one.

Example:
  >>> import numpy as np
  >>> from jrobust.data import from_arrays
  >>> pop = from_arrays(np.arange(20.0).reshape(10, 2), np.arange(1.0, 11.0), test_size=2)
  >>> new = standardize(pop)
  >>> bool(abs(new.x[new.pool_index].mean()) < 1e-6)
  True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from jrobust._src.data.population import Population

__all__ = ["log_energy", "one_hot", "one_hot_labels", "standardize"]


def _replace(
    pop: Population, step: dict[str, Any], touched: Sequence[str], **fields: Any
) -> Population:
    meta = dict(pop.meta)
    meta["preprocess"] = [*pop.meta.get("preprocess", []), step]
    meta["transformed"] = sorted(set(pop.meta.get("transformed", ())) | set(touched))
    return dataclasses.replace(pop, meta=meta, **fields)


def _reduce_axes(ndim: int, per: str) -> tuple[int, ...]:
    if per == "global":
        return tuple(range(ndim))
    if per == "feature":
        return (0,)
    if per == "channel":
        return tuple(range(ndim - 1))
    raise ValueError(f"per={per!r} must be 'auto', 'global', 'channel' or 'feature'")


def _stats(a: np.ndarray, pool: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    sample = a[pool].astype(np.float64)
    mean = sample.mean(axis=axes, keepdims=True)
    std = sample.std(axis=axes, keepdims=True)
    std = np.where(std > 1e-12, std, 1.0)  # constant features (e.g. border pixels) stay at 0
    return mean[0], std[0]  # axes always include the event axis 0


def standardize(
    pop: Population,
    *,
    inputs: bool = True,
    side: bool = True,
    per: Literal["auto", "global", "channel", "feature"] = "auto",
) -> Population:
    """Shift and scale inputs (and side features) to zero mean, unit variance on the pool.

    Args:
      pop: the population.
      inputs: standardise ``x``.
      side: standardise the side features (each column separately).
      per: how ``x`` is pooled: ``"global"`` (one mean/std), ``"channel"`` (per last axis, the
        usual choice for images), ``"feature"`` (per input element), or ``"auto"`` (``"feature"``
        for tabular ``(n, f)`` inputs, ``"channel"`` for images ``(n, h, w, c)``).

    Returns:
      A new population; ``meta["preprocess"][-1]`` holds the means and standard deviations.

    Example:
      >>> import numpy as np
      >>> from jrobust.data import from_arrays
      >>> pop = from_arrays(np.random.default_rng(0).normal(5, 2, (50, 3)), np.zeros(50))
      >>> new = standardize(pop)
      >>> np.allclose(new.x[new.pool_index].std(axis=0), 1.0, atol=1e-5)
      True
    """
    if per == "auto":
        per = "feature" if pop.x.ndim == 2 else "channel"
    step: dict[str, Any] = {"op": "standardize", "per": per}
    fields: dict[str, Any] = {}
    touched: list[str] = []
    pool = pop.pool_index
    if inputs:
        axes = _reduce_axes(pop.x.ndim, per)
        mean, std = _stats(pop.x, pool, axes)
        fields["x"] = ((pop.x - mean) / std).astype(np.float32)
        step.update(x_mean=mean.astype(np.float32), x_std=std.astype(np.float32))
        touched.append("x")
    if side and pop.side is not None and pop.side.shape[1]:
        mean, std = _stats(pop.side, pool, (0,))
        fields["side"] = ((pop.side - mean) / std).astype(np.float32)
        step.update(side_mean=mean.astype(np.float32), side_std=std.astype(np.float32))
        touched.extend(f"side:{s}" for s in pop.side_names)
    return _replace(pop, step, touched, **fields)


def log_energy(
    pop: Population,
    *,
    targets: Sequence[str] = ("energy",),
    side: Sequence[str] = ("total_energy",),
    floor: float = 1e-3,
) -> Population:
    """Natural log of energy columns (targets and side features); values below ``floor`` are
    clipped to it (noise can make a sum of cells slightly negative).

    A model trained on ``log(E)`` predicts ``log(E)``; ``np.exp`` of its prediction is the energy.
    Named columns missing from the population are an error (with the default names, a missing
    ``total_energy`` side feature is skipped).

    Args:
      pop: a regression population (e.g. from :func:`jrobust.data.calorimeter`).
      targets: target columns to transform.
      side: side-feature columns to transform.
      floor: smallest value before the log (GeV).

    Returns:
      A new population.

    Example:
      >>> from jrobust.data import calorimeter
      >>> pop = log_energy(calorimeter(1_000, "A", cache=False))
      >>> bool(pop.y[:, 0].max() <= np.log(100.0) + 1e-6)
      True
    """
    if pop.is_classification:
        raise ValueError(f"{pop.name} holds class labels; log_energy needs regression targets")
    if floor <= 0:
        raise ValueError(f"floor={floor} must be positive")
    defaults = tuple(targets) == ("energy",) and tuple(side) == ("total_energy",)
    t_cols = [t for t in targets if t in pop.target_names]
    s_cols = [s for s in side if s in pop.side_names]
    missing = [t for t in targets if t not in t_cols] + [s for s in side if s not in s_cols]
    # with the default names a population may lack the side column; anything else is a mistake
    if (missing and not defaults) or not (t_cols or s_cols):
        raise ValueError(
            f"log_energy: columns {missing} are not in {pop.name!r} (targets {pop.target_names}, "
            f"side features {pop.side_names}); pass targets=/side= with the energy columns' names"
        )
    done = set(pop.meta.get("transformed", ()))
    again = [f"y:{t}" for t in t_cols if f"y:{t}" in done] + [
        f"side:{s}" for s in s_cols if f"side:{s}" in done
    ]
    if again:
        raise ValueError(
            f"columns {again} were already transformed; apply log_energy to the raw data"
        )
    y = pop.y.copy()
    for t in t_cols:
        j = pop.target_names.index(t)
        y[:, j] = np.log(np.maximum(y[:, j], floor))
    fields: dict[str, Any] = {"y": y}
    if s_cols:
        sd = pop.side.copy()
        for s in s_cols:
            j = pop.side_names.index(s)
            sd[:, j] = np.log(np.maximum(sd[:, j], floor))
        fields["side"] = sd
    step = {"op": "log_energy", "targets": t_cols, "side": s_cols, "floor": floor}
    touched = [f"y:{t}" for t in t_cols] + [f"side:{s}" for s in s_cols]
    return _replace(pop, step, touched, **fields)


def one_hot_labels(labels: Any, num_classes: int) -> np.ndarray:
    """One-hot encoding of integer labels, float32 of shape ``(n, num_classes)``.

    Example:
      >>> one_hot_labels([0, 2], 3).tolist()
      [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got [{labels.min()}, {labels.max()}]"
        )
    out = np.zeros((labels.shape[0], num_classes), np.float32)
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


def one_hot(pop: Population) -> Population:
    """A classification population with one-hot float targets (e.g. for an MSE head).

    The new population has ``num_classes=None`` and targets ``class_0 ... class_{k-1}``; the
    number of classes is kept in ``meta["num_classes"]``.

    Args:
      pop: a population with integer labels (``num_classes`` set).

    Returns:
      A new population.

    Example:
      >>> from jrobust.data import digits
      >>> one_hot(digits()).y.shape
      (1797, 10)
    """
    if not pop.is_classification:
        raise ValueError(
            f"{pop.name} has regression targets {pop.target_names}; one_hot needs integer class "
            "labels (build the population with num_classes=...)"
        )
    k = int(pop.num_classes)
    meta = dict(pop.meta)
    meta["num_classes"] = k
    meta["preprocess"] = [*pop.meta.get("preprocess", []), {"op": "one_hot", "num_classes": k}]
    meta["transformed"] = sorted(set(pop.meta.get("transformed", ())) | {"y"})
    names = pop.meta.get("class_names")
    target_names = tuple(f"class_{names[i] if names else i}" for i in range(k))
    if len(set(target_names)) != k:
        target_names = tuple(f"class_{i}" for i in range(k))
    return dataclasses.replace(
        pop, y=one_hot_labels(pop.y, k), num_classes=None, target_names=target_names, meta=meta
    )
