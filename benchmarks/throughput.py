"""Trainer throughput: instance-steps per second against the stack size, side by side with
one-at-a-time training in JAX and in PyTorch (the paper's way), in one run on one machine.

The model is the paper's energy model 1 (23,923 parameters, batch 64, 15x15x1 inputs, NAdam
lr 1e-4, L2 0.01). An *instance-step* is one optimizer step of one instance; a stack of S instances
doing n steps counts S*n. Compilation is excluded (each program is compiled and run once first).

    python benchmarks/throughput.py                      # CPU defaults
    python benchmarks/throughput.py --stacks 1 64 256 1024 --impls im2col xla   # e.g. on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import jax
import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(__file__))

import jrobust  # noqa: E402
from jrobust import zoo  # noqa: E402
from jrobust.bench import throughput  # noqa: E402
from jrobust.train import train_stack  # noqa: E402


def random_population(n_events: int = 40_000, seed: int = 0) -> jrobust.Population:
    rng = np.random.default_rng(seed)
    x = rng.gamma(0.5, 0.2, (n_events, 15, 15, 1)).astype(np.float32)
    energy = x.sum(axis=(1, 2, 3)) + 1.0
    y = np.stack([energy, rng.random(n_events), rng.random(n_events)], 1)
    side = np.stack([energy, rng.random(n_events), rng.random(n_events)], 1)
    return jrobust.Population(
        x,
        y,
        side=side,
        target_names=("energy", "x", "y"),
        side_names=("total_energy", "bary_x", "bary_y"),
        test_size=256,
        name="random",
    )


def time_stack(stack: int, steps: int, impl: str, repeats: int = 2) -> dict:
    """Instance-steps/s of one compiled call training ``stack`` instances for ``steps`` steps
    (``jrobust.bench.throughput``, the same measurement as ``jrobust bench``)."""
    row = throughput([stack], steps=steps, repeats=repeats, conv_impl=impl).iloc[0]
    return {
        "stack": stack,
        "impl": impl,
        "steps": steps,
        "seconds": float(row.seconds),
        "compile_s": float(row.compile_seconds),
        "instance_steps_per_s": float(row.instance_steps_per_s),
    }


def jax_one_at_a_time(pop, n_instances: int, steps: int, impl: str) -> float:
    """A loop that trains one instance per call (the compiled single-instance program)."""
    config = zoo.paper_config(1, epochs=1, train_size=64 * steps, conv_impl=impl)
    train_stack([config], [0], pop)  # compile
    t0 = time.perf_counter()
    for i in range(n_instances):
        train_stack([config], [i + 1], pop)
    return n_instances * steps / (time.perf_counter() - t0)


def main(argv=None) -> pd.DataFrame:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--stacks", type=int, nargs="+", default=[1, 4, 16, 64, 256])
    p.add_argument("--impls", nargs="+", default=["im2col", "xla"])
    p.add_argument(
        "--work", type=int, default=6000, help="instance-steps per timed call (sets steps)"
    )
    p.add_argument("--torch-device", default="cpu")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--json", help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    pop = random_population()
    device = jax.devices()[0]
    print(
        f"# jax {jax.__version__} on {device.platform} ({device.device_kind}), {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}",
        flush=True,
    )
    rows = []
    for impl in args.impls:
        for stack in args.stacks:
            steps = int(np.clip(args.work // stack, 20, 300))
            try:
                row = time_stack(stack, steps, impl)
            except Exception as err:  # noqa: BLE001 - out of memory ends the sweep for this impl
                print(f"stack {stack} ({impl}) failed: {type(err).__name__}: {str(err)[:120]}")
                break
            rows.append(row)
            print(
                f"jax {impl:7s} stack {stack:5d}: {row['instance_steps_per_s']:10.1f} instance-steps/s "
                f"(compile {row['compile_s']:.1f} s)",
                flush=True,
            )
        one = jax_one_at_a_time(pop, 4, 100, impl)
        rows.append(
            {
                "stack": 1,
                "impl": f"jax one-at-a-time ({impl})",
                "steps": 100,
                "seconds": np.nan,
                "compile_s": np.nan,
                "instance_steps_per_s": one,
            }
        )
        print(f"jax one at a time ({impl}): {one:.1f} steps/s", flush=True)
    if not args.no_torch:
        from torch_reference import torch_steps_per_second

        torch_rate = torch_steps_per_second(n_steps=300, device=args.torch_device, instances=2)
        rows.append(
            {
                "stack": 1,
                "impl": f"pytorch one-at-a-time ({args.torch_device})",
                "steps": 300,
                "seconds": np.nan,
                "compile_s": np.nan,
                "instance_steps_per_s": torch_rate,
            }
        )
        print(f"pytorch one at a time: {torch_rate:.1f} steps/s", flush=True)
    frame = pd.DataFrame(rows)
    if not args.no_torch:
        frame["vs_pytorch"] = frame.instance_steps_per_s / torch_rate
    print(
        frame.to_markdown(index=False, floatfmt=".3g")
        if _has_tabulate()
        else frame.to_string(index=False)
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(frame.to_dict(orient="records"), f, indent=1)
    return frame


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401

        return True
    except ImportError:
        return False


if __name__ == "__main__":
    main()
