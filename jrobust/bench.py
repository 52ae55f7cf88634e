"""Throughput of the vectorised trainer: instance-steps per second against the stack size.

The paper's energy model 1 (Boldyrev, Ratnikov, Shevelev, IEEE Access 2025: two 3×3 convolutions,
NAdam, batch 64, 15×15 inputs) is trained on random data, ``stack`` instances at a time in one
compiled call (``jrobust.train_stack``). Each stack size is run once to compile (not timed),
then timed over ``repeats`` calls; an *instance-step* is one optimizer step of one instance, so
``stack * steps / seconds`` measures how well the device is used as the stack grows.

Example:
  >>> frame = throughput((1, 2), steps=5)  # doctest: +SKIP
  >>> list(frame.columns)  # doctest: +SKIP
  ['stack', 'instance_steps_per_s', 'seconds', 'steps', 'compile_seconds', 'device']
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import pandas as pd

from jrobust import presets
from jrobust.data.population import Population
from jrobust.train import train_stack

__all__ = ["throughput", "DEFAULT_STACKS"]

DEFAULT_STACKS = (1, 8, 64)


def _population(n_train: int, n_test: int, seed: int):
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    x = rng.gamma(0.5, 1.0, (n, 15, 15, 1)).astype(np.float32)
    energy = x.sum(axis=(1, 2, 3)) * rng.uniform(0.95, 1.05, n) + 1.0
    return Population(
        x,
        energy.astype(np.float32),
        side=x.sum(axis=(1, 2, 3))[:, None],
        target_names=("energy",),
        side_names=("total_energy",),
        test_size=n_test,
        val_size=0,
        name="random",
    )


def throughput(
    stack_sizes: Sequence[int] = DEFAULT_STACKS,
    *,
    steps: int = 50,
    batch_size: int = 64,
    repeats: int = 1,
    model: int = 1,
    test_size: int = 256,
    seed: int = 0,
    conv_impl: str | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> pd.DataFrame:
    """Time ``jrobust.train_stack`` of the paper's model ``model`` for each stack size.

    Args:
      stack_sizes: instances per compiled call.
      steps: optimizer steps per instance (one epoch over ``steps * batch_size`` events).
      batch_size: mini-batch size (the paper's model 1: 64).
      repeats: timed calls per stack size (the fastest counts); the first, compiling call is
        never timed.
      model: the paper model (1-4).
      test_size: test events each instance is evaluated on after training (part of the time).
      seed: seeds the random data.
      conv_impl: ``"im2col"``, ``"xla"`` or ``None`` (the trainer's choice for the backend).
      progress: called with each row as it is measured.

    Returns:
      DataFrame with ``stack``, ``instance_steps_per_s``, ``seconds`` (the timed call),
      ``steps`` (per instance), ``compile_seconds`` and ``device``.
    """
    stacks = [int(s) for s in stack_sizes]
    if not stacks or any(s < 1 for s in stacks):
        raise ValueError(f"stack sizes must be positive integers, got {list(stack_sizes)}")
    if steps < 1 or batch_size < 1 or repeats < 1:
        raise ValueError(
            f"steps, batch_size and repeats must be >= 1, got {steps}, {batch_size}, {repeats}"
        )
    train_size = steps * batch_size
    population = _population(train_size, test_size, seed)
    config = presets.paper_config(
        model,
        epochs=1,
        train_size=train_size,
        batch_size=batch_size,
        side_features=(),
        target=None,
        name=None,
    )
    device = str(jax.devices()[0].device_kind)
    rows = []
    for stack in stacks:
        configs = [config] * stack
        t0 = time.perf_counter()
        warm = train_stack(configs, np.arange(stack), population, seed=seed, conv_impl=conv_impl)
        compile_seconds = float(warm["compile_seconds"]) or time.perf_counter() - t0
        best = np.inf
        for r in range(repeats):
            t0 = time.perf_counter()
            train_stack(
                configs,
                np.arange(stack) + stack * (r + 1),
                population,
                seed=seed,
                conv_impl=conv_impl,
            )
            best = min(best, time.perf_counter() - t0)
        row = dict(
            stack=stack,
            instance_steps_per_s=stack * steps / best,
            seconds=best,
            steps=steps,
            compile_seconds=compile_seconds,
            device=device,
        )
        rows.append(row)
        if progress is not None:
            progress(row)
    return pd.DataFrame(rows)
