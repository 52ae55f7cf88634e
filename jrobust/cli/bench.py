"""``jrobust bench``: instance-steps per second of the vectorised trainer against the stack size."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from jrobust.cli.options import DEBUG, EXIT_OK, Help, positive_int, stack_sizes

__all__ = ["add_parser", "command"]

EPILOG = """\
examples:
  jrobust bench                        stacks of 1, 8, 64 instances, 50 steps each
  jrobust bench --torch --repeats 3    and PyTorch one instance at a time, side by side
  jrobust bench --stacks 1,16,128,512 --steps 200 --csv bench.csv
Compilation is excluded from the timings (each stack size is run once before it is timed).
With --repeats R every stack size and PyTorch are timed R times, interleaved; the best counts.
"""


def add_parser(sub) -> argparse.ArgumentParser:
    bench = sub.add_parser(
        "bench",
        help="instance-steps/s of paper model 1 against the stack size",
        formatter_class=Help,
        epilog=EPILOG,
        description="Throughput of the vectorised trainer: the paper's energy model 1 "
        "(15x15 inputs, NAdam) on random data, one compiled call per stack.",
    )
    bench.add_argument(
        "--stacks",
        type=stack_sizes,
        default=[1, 8, 64],
        metavar="N,N,...",
        help="stack sizes (default: 1,8,64)",
    )
    bench.add_argument(
        "--steps",
        type=positive_int,
        default=50,
        metavar="N",
        help="steps per instance (default: 50)",
    )
    bench.add_argument(
        "--batch-size", type=positive_int, default=64, metavar="B", help="batch size (default: 64)"
    )
    bench.add_argument(
        "--repeats",
        type=positive_int,
        default=1,
        metavar="R",
        help="timed calls per stack size, the fastest counts (default: 1)",
    )
    bench.add_argument(
        "--model", type=int, choices=(1, 2, 3, 4), default=1, help="paper model (default: 1)"
    )
    bench.add_argument(
        "--conv-impl",
        choices=("auto", "im2col", "xla"),
        default="auto",
        help="convolution implementation (default: the backend's choice)",
    )
    bench.add_argument(
        "--stack-mode",
        default=None,
        metavar="MODE",
        help="how a stack runs: vmap, map, map:N (default: the backend's choice)",
    )
    bench.add_argument(
        "--torch",
        action="store_true",
        help="also time PyTorch one instance at a time (the paper's way), in the same run",
    )
    bench.add_argument(
        "--torch-threads", type=positive_int, metavar="N", help="PyTorch's threads (default: all)"
    )
    bench.add_argument("--csv", metavar="FILE", help="also write the table to FILE")
    bench.add_argument("--json", action="store_true", help="print JSON records")
    bench.add_argument("--debug", **DEBUG)
    bench.set_defaults(func=command)
    return bench


def command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from jrobust.bench import throughput
    from jrobust.cli.console import Output

    out = Output(args)
    if out.mode == "quiet" and not args.json:
        out.mode = "plain"  # the table is the answer

    def shown(row: dict[str, Any]) -> None:
        if out.mode == "rich":
            who = "pytorch    " if row["framework"] == "pytorch" else f"stack {row['stack']:>5}"
            out.console.print(
                f"{who}: {row['instance_steps_per_s']:10.1f} instance-steps/s, "
                f"{100 * row['matmul_fraction']:.0f} % of the matmul rate"
                + (f", {row['vs_pytorch']:.2f}x pytorch" if "vs_pytorch" in row else "")
            )

    if out.mode == "rich":
        out.console.print(
            f"paper model {args.model}, batch {args.batch_size}, {args.steps} steps per instance; "
            f"stacks {', '.join(map(str, args.stacks))}"
        )
    frame = throughput(
        args.stacks,
        steps=args.steps,
        batch_size=args.batch_size,
        repeats=args.repeats,
        model=args.model,
        conv_impl=None if args.conv_impl == "auto" else args.conv_impl,
        stack_mode=args.stack_mode,
        torch=args.torch,
        torch_threads=args.torch_threads,
        progress=shown,
    )
    if args.csv:
        frame.to_csv(args.csv, index=False)
    if args.json:
        print(json.dumps(frame.to_dict(orient="records"), indent=2))
    elif out.mode != "rich":
        print(frame.to_string(index=False, float_format=lambda v: f"{v:.2f}"), flush=True)
    if not args.json:
        ours = frame[frame.framework == "jrobust"]
        best = ours.loc[ours.instance_steps_per_s.idxmax()]
        line = (
            f"best: stack {int(best['stack'])}, {best['instance_steps_per_s']:.0f} instance-steps/s"
            f" = {100 * best['matmul_fraction']:.0f} % of this machine's float32 matmul rate "
            f"({frame.attrs['matmul_gflops']:.0f} GFLOP/s, {frame.attrs['step_gflop']:.3f} GFLOP "
            "per step)"
        )
        if args.torch:
            line += f"; {best['vs_pytorch']:.2f}x PyTorch one instance at a time"
        print(line, flush=True)
    return EXIT_OK
