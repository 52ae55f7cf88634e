"""Trainer throughput against PyTorch at its best, in one run on one machine (the protocol of
``jrobust._src.bench``: interleaved repeats, medians with their ranges, the matmul rate beside them).

The model is the paper's energy model 1 (23,923 parameters, batch 64, 15x15x1 inputs, NAdam
lr 1e-4, L2 0.01). An *instance-step* is one optimizer step of one instance; a stack of S
instances doing n steps counts S*n. PyTorch trains the same model one instance at a time: one
process with every thread, one one-thread process per core at once, each eager and
``torch.compile``-d; the fastest is the denominator. Compilation is excluded (and reported).
The defaults are the full protocol (``FULL_STEPS`` steps, ``FULL_REPEATS`` repeats);
``benchmarks/run_cpu.sh`` runs it and keeps the raw JSON.

    python benchmarks/throughput.py --json results/cpu.json          # the full protocol
    python benchmarks/throughput.py --steps 50 --repeats 2 --stacks 1 8   # a quick check
    python benchmarks/throughput.py --stacks 4 8 16 --stack-modes vmap map:2 map:4 --no-torch
    python benchmarks/throughput.py --device gpu --stacks 1 64 256 1024 --impls xla im2col
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

import pandas as pd


def main(argv=None) -> pd.DataFrame:
    from jrobust._src.bench import FULL_REPEATS, FULL_STEPS

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--stacks", type=int, nargs="+", default=[1, 4, 8, 16, 64])
    p.add_argument("--impls", nargs="+", default=["auto"], help="auto, im2col, xla")
    p.add_argument("--stack-modes", nargs="+", default=["auto"], help="auto, vmap, map:N")
    p.add_argument("--steps", type=int, default=FULL_STEPS, help="steps per timed call, both sides")
    p.add_argument("--repeats", type=int, default=FULL_REPEATS, help="interleaved repeats")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--device",
        choices=("cpu", "gpu"),
        default="cpu",
        help="where both frameworks train (gpu: JAX on CUDA, PyTorch on cuda)",
    )
    p.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="threads of the one-process PyTorch setup (default: PyTorch's, every core)",
    )
    p.add_argument(
        "--torch-processes",
        type=int,
        default=None,
        help="one-thread PyTorch processes at once (default: one per CPU on the CPU, 0 on a GPU)",
    )
    p.add_argument("--no-torch-compile", action="store_true", help="PyTorch eager only")
    p.add_argument("--no-torch", action="store_true", help="jrobust only")
    p.add_argument("--matmul-n", type=int, default=None, help="matrix size of the matmul rate")
    p.add_argument("--json", help="write every measurement to this JSON file")
    p.add_argument("--markdown", help="write the table to this Markdown file")
    args = p.parse_args(argv)

    import jax

    # before JAX starts a backend: both frameworks train on the chosen device
    jax.config.update("jax_platforms", "cuda" if args.device == "gpu" else "cpu")
    from jrobust._src.bench import format_table, throughput, throughput_record
    from jrobust._src.torch_reference import have_torch

    try:
        device = jax.devices()[0]
    except Exception as err:  # noqa: BLE001 - JAX fails in several ways without the device
        reason = " ".join(str(err).split()) or type(err).__name__
        raise SystemExit(f"throughput.py: JAX finds no {args.device} here ({reason})") from None
    print(f"# jax {jax.__version__} on {device.platform} ({device.device_kind}), "
          f"{os.cpu_count()} CPUs", flush=True)  # fmt: skip
    use_torch = not args.no_torch and have_torch()
    if not args.no_torch and not use_torch:
        print("# PyTorch is not installed: jrobust only (pip install -e '.[torch]')", flush=True)
    variants = [(None if i == "auto" else i, None if m == "auto" else m)
                for i in args.impls for m in args.stack_modes]  # fmt: skip
    frame = throughput(
        args.stacks,
        steps=args.steps,
        batch_size=args.batch_size,
        repeats=args.repeats,
        variants=variants,
        torch=use_torch,
        torch_threads=args.torch_threads,
        torch_processes=args.torch_processes,
        torch_compile=not args.no_torch_compile,
        torch_device="cuda" if args.device == "gpu" else "cpu",
        matmul_n=args.matmul_n,
        log=lambda line: print(f"# {line}", file=sys.stderr, flush=True),
    )
    print(format_table(frame), flush=True)
    peak = frame.attrs["peak"]
    if peak.get("gflops"):
        print(f"# peak {peak['gflops']:.0f} GFLOP/s = {peak['cores']} cores x {peak['simd_lanes']} "
              f"lanes ({peak['isa']}) x {peak['fma_units']} FMA units x 2 x "
              f"{peak['clock_ghz']:.2f} GHz ({peak['clock_source']}); assumed: "
              f"{'; '.join(peak['assumed']) or 'nothing'}", flush=True)  # fmt: skip
    else:
        print(f"# peak: {peak.get('reason')}", flush=True)
    print(f"# {frame.attrs['step_gflop']:.6f} GFLOP per step (matrix products); matmul rate: "
          f"median of the per-repeat best {frame.attrs['matmul_gflops']:.1f} GFLOP/s "
          f"(n = {frame.attrs['matmul']['n']}, {' and '.join(frame.attrs['matmul']['libraries'])})",
          flush=True)  # fmt: skip
    if args.json:
        path = pathlib.Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = throughput_record(frame)
        record["command"] = " ".join(
            ["python", "benchmarks/throughput.py", *(argv or sys.argv[1:])]
        )
        path.write_text(json.dumps(record, indent=1) + "\n")
    if args.markdown:
        pathlib.Path(args.markdown).write_text(format_table(frame, markdown=True) + "\n")
    return frame


if __name__ == "__main__":
    main()
