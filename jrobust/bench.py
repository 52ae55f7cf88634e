"""Throughput of the vectorised trainer: instance-steps per second against the stack size.

With ``torch=True`` the same run also times PyTorch training one instance at a time (the
paper's way, in a separate process, interleaved with jrobust's stacks so both see the same
machine), and reports each stack's ratio to it and the fraction of the machine's float32
matrix-multiply rate (measured with NumPy in the same run) that the stack reaches.

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

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import pandas as pd

from jrobust import presets
from jrobust.data.population import Population
from jrobust.programs import own_flops
from jrobust.torch_reference import have_torch
from jrobust.train import train_stack

__all__ = ["throughput", "matmul_gflops", "torch_one_at_a_time", "DEFAULT_STACKS"]

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


def matmul_gflops(n: int = 1024, repeats: int = 5) -> float:
    """The machine's float32 matrix-multiply rate (NumPy, its default threads), GFLOP/s: the
    best of ``repeats`` products of two ``n x n`` matrices."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), np.float32)
    b = rng.random((n, n), np.float32)
    a @ b  # warm up the library
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def torch_one_at_a_time(
    steps: int = 300, batch_size: int = 64, threads: int | None = None, device: str = "cpu"
) -> float:
    """Steps/s of PyTorch training the paper's model 1 one instance at a time, in a fresh
    process (``jrobust.torch_reference``); an ``ImportError`` when torch is not installed."""
    if not have_torch():
        raise ImportError(
            "--torch needs PyTorch: pip install -e '.[torch]' (on this project's machines: "
            "pip install torch==2.13.0, a CPU build)"
        )
    argv = [sys.executable, "-m", "jrobust.torch_reference", "--json", "--steps", str(steps),
            "--batch-size", str(batch_size), "--device", device]  # fmt: skip
    if threads is not None:
        argv += ["--threads", str(threads)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"))  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the PyTorch reference failed: {done.stderr.strip()[-500:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["steps_per_s"])


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
    stack_mode: str | None = None,
    torch: bool = False,
    torch_threads: int | None = None,
    torch_device: str = "cpu",
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
      stack_mode: how a stack runs (``jrobust.train.resolve_stack_mode``; ``None``: the
        backend's choice).
      torch: also time PyTorch one instance at a time (in a separate process, once per repeat,
        interleaved with the stacks); needs the ``torch`` extra.
      torch_threads: PyTorch's threads (``None``: its default, every core).
      torch_device: PyTorch's device (``"cpu"``, ``"cuda"``).
      progress: called with each row as it is measured.

    Returns:
      DataFrame with ``framework`` (``"jrobust"`` or ``"pytorch"``), ``stack``,
      ``instance_steps_per_s``, ``seconds`` (the timed call), ``steps`` (per instance),
      ``compile_seconds``, ``device``, ``gflops`` (of the training steps), ``matmul_fraction``
      (of the machine's measured float32 matmul rate) and, with ``torch``, ``vs_pytorch``.
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
    flops = own_flops(config, population.input_shape)
    matmul = matmul_gflops()
    compiled: dict[int, float] = {}
    for stack in stacks:  # compile every stack size first (not timed)
        t0 = time.perf_counter()
        warm = train_stack([config] * stack, np.arange(stack), population, seed=seed,
                           conv_impl=conv_impl, stack_mode=stack_mode)  # fmt: skip
        compiled[stack] = float(warm["compile_seconds"]) or time.perf_counter() - t0
    best = {stack: np.inf for stack in stacks}
    torch_rates = []
    for r in range(repeats):  # interleaved: every stack, then PyTorch, again and again
        for stack in stacks:
            t0 = time.perf_counter()
            train_stack([config] * stack, np.arange(stack) + stack * (r + 1), population,
                        seed=seed, conv_impl=conv_impl, stack_mode=stack_mode)  # fmt: skip
            best[stack] = min(best[stack], time.perf_counter() - t0)
        if torch:
            torch_rates.append(
                torch_one_at_a_time(max(steps, 100), batch_size, torch_threads, torch_device)
            )
    rows = []
    for stack in stacks:
        rate = stack * steps / best[stack]
        rows.append(dict(framework="jrobust", stack=stack, instance_steps_per_s=rate,
                         seconds=best[stack], steps=steps, compile_seconds=compiled[stack],
                         device=device))  # fmt: skip
    if torch:
        rows.append(dict(framework="pytorch", stack=1, instance_steps_per_s=max(torch_rates),
                         seconds=np.nan, steps=max(steps, 100), compile_seconds=0.0,
                         device=torch_device))  # fmt: skip
    for row in rows:
        row["gflops"] = row["instance_steps_per_s"] * flops / 1e9
        row["matmul_fraction"] = row["gflops"] / matmul
        if torch:
            row["vs_pytorch"] = row["instance_steps_per_s"] / max(torch_rates)
        if progress is not None:
            progress(row)
    frame = pd.DataFrame(rows)
    frame.attrs["matmul_gflops"] = matmul
    frame.attrs["step_gflop"] = flops / 1e9
    return frame
