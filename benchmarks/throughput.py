"""Trainer throughput: instance-steps per second against the stack size, side by side with
PyTorch training one instance at a time (the paper's way), in one run on one machine.

The model is the paper's energy model 1 (23,923 parameters, batch 64, 15x15x1 inputs, NAdam
lr 1e-4, L2 0.01). An *instance-step* is one optimizer step of one instance; a stack of S instances
doing n steps counts S*n. Compilation is excluded (each program is compiled and run once first).
The stacks and PyTorch (in its own process) are timed in interleaved repeats; the best counts.
Each row also gives the fraction of this machine's float32 matmul rate (NumPy, same run).

    python benchmarks/throughput.py                          # CPU defaults
    python benchmarks/throughput.py --stacks 1 8 32 64 --repeats 3 --torch-threads 1 2
    python benchmarks/throughput.py --stacks 1 64 256 1024 --impls im2col xla   # e.g. on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform

import jax
import pandas as pd

from jrobust.bench import throughput
from jrobust.torch_reference import have_torch


def main(argv=None) -> pd.DataFrame:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--stacks", type=int, nargs="+", default=[1, 4, 8, 16, 32, 64])
    p.add_argument("--impls", nargs="+", default=["auto"])
    p.add_argument("--stack-modes", nargs="+", default=["auto"])
    p.add_argument("--steps", type=int, default=60, help="steps per instance per timed call")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--torch-threads",
        type=int,
        nargs="+",
        default=[None],
        help="PyTorch threads (default: its own default, every core)",
    )
    p.add_argument("--torch-device", default="cpu")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--json", help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    device = jax.devices()[0]
    print(f"# jax {jax.__version__} on {device.platform} ({device.device_kind}), {os.cpu_count()} "
          f"CPUs, {platform.processor() or platform.machine()}", flush=True)  # fmt: skip
    frames = []
    use_torch = not args.no_torch and have_torch()
    for impl in args.impls:
        for mode in args.stack_modes:
            for threads in args.torch_threads if use_torch else [None]:
                frame = throughput(
                    args.stacks, steps=args.steps, repeats=args.repeats,
                    conv_impl=None if impl == "auto" else impl,
                    stack_mode=None if mode == "auto" else mode,
                    torch=use_torch, torch_threads=threads, torch_device=args.torch_device,
                )  # fmt: skip
                frame.insert(1, "impl", impl)
                frame.insert(2, "stack_mode", mode)
                frame.insert(3, "torch_threads", threads or "default")
                frame["matmul_gflops"] = frame.attrs["matmul_gflops"]
                frames.append(frame)
                print(frame.to_string(index=False, float_format=lambda v: f"{v:.3g}"), flush=True)
    out = pd.concat(frames, ignore_index=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out.to_dict(orient="records"), f, indent=1, default=str)
    return out


if __name__ == "__main__":
    main()
