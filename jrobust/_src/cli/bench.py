"""``jrobust bench``: instance-steps per second of the vectorised trainer against the stack size,
and against PyTorch at its best on the same machine (``jrobust._src.bench``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from jrobust._src.cli.options import (
    DEBUG,
    EXIT_OK,
    Help,
    UsageError,
    nonnegative_int,
    positive_int,
    stack_sizes,
)
from jrobust._src.specs import FULL_REPEATS, FULL_STEPS, check_stack_mode

__all__ = ["add_parser", "command"]

EPILOG = """\
examples:
  jrobust bench                        stacks of 1, 8, 64 instances, 50 steps, one repeat (~1 min)
  jrobust bench --torch                and PyTorch: one process with every thread, one
                                       one-thread process per core at once
  jrobust bench --full --json > r.json the full protocol: 300 steps, 5 interleaved repeats,
                                       PyTorch eager and torch.compile-d (minutes)
  jrobust bench --stacks 1,16,128,512 --steps 200 --csv bench.csv
Compilation is excluded from the timings (every stack size and PyTorch setup runs once first).
Every repeat times each stack and PyTorch setup once, alternating which goes first, after the
machine's matmul rate; rates are medians over the repeats (min-max beside them), ratios the
medians of the ratios within a repeat. benchmarks/throughput.py runs the same protocol with
more options; benchmarks/run_cpu.sh records it.
"""


def _stack_mode(text: str) -> str:
    try:
        check_stack_mode(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def add_parser(sub) -> argparse.ArgumentParser:
    bench = sub.add_parser(
        "bench",
        help="instance-steps/s of paper model 1 against the stack size (and PyTorch)",
        formatter_class=Help,
        epilog=EPILOG,
        description="Throughput of the vectorised trainer: the paper's energy model 1 "
        "(15x15 inputs, NAdam) on random data, one compiled call per stack, and PyTorch "
        "at its best on the same machine (--torch).",
    )
    _what_to_time(bench.add_argument_group("what to time"))
    _pytorch(bench.add_argument_group("PyTorch"))
    bench.add_argument(
        "--full",
        action="store_true",
        help=f"the full protocol: --torch --torch-compile, {FULL_STEPS} steps, "
        f"{FULL_REPEATS} repeats (unless given)",
    )
    bench.add_argument("--csv", metavar="FILE", help="also write the table to FILE")
    bench.add_argument(
        "--json", action="store_true", help="print every measurement as one JSON object"
    )
    bench.add_argument("--debug", **DEBUG)
    bench.set_defaults(func=command)
    return bench


def _what_to_time(g) -> None:
    g.add_argument(
        "--stacks",
        type=stack_sizes,
        default=[1, 8, 64],
        metavar="N,N,...",
        help="stack sizes (default: 1,8,64)",
    )
    g.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"steps per instance and timed call, both sides (default: 50; --full: {FULL_STEPS})",
    )
    g.add_argument(
        "--batch-size", type=positive_int, default=64, metavar="B", help="batch size (default: 64)"
    )
    g.add_argument(
        "--repeats",
        type=positive_int,
        default=None,
        metavar="R",
        help=f"interleaved timed calls per setup (default: 1; --full: {FULL_REPEATS})",
    )
    g.add_argument(
        "--model", type=int, choices=(1, 2, 3, 4), default=1, help="paper model (default: 1)"
    )
    g.add_argument(
        "--conv-impl",
        choices=("auto", "im2col", "xla"),
        default="auto",
        help="convolution implementation (default: the backend's choice)",
    )
    g.add_argument(
        "--stack-mode",
        type=_stack_mode,
        default=None,
        metavar="MODE",
        help="how a stack runs: vmap, map, map:N (default: the backend's choice)",
    )


def _pytorch(g) -> None:
    g.add_argument(
        "--torch",
        action="store_true",
        help="also time PyTorch training model 1 one instance at a time, at its best",
    )
    g.add_argument(
        "--torch-threads",
        type=positive_int,
        metavar="N",
        help="threads of the one-process PyTorch setup (default: PyTorch's, every core)",
    )
    g.add_argument(
        "--torch-processes",
        type=nonnegative_int,
        metavar="N",
        help="one-thread PyTorch processes run at once (default: one per CPU; 0: none)",
    )
    g.add_argument("--torch-compile", action="store_true", help="also time torch.compile-d PyTorch")


def command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from jrobust._src.bench import format_table, throughput, throughput_record
    from jrobust._src.cli.console import Output
    from jrobust._src.torch_reference import have_torch

    out = Output(args)
    full = args.full
    steps = args.steps or (FULL_STEPS if full else 50)
    repeats = args.repeats or (FULL_REPEATS if full else 1)
    use_torch = args.torch or full
    if use_torch and args.model != 1:
        raise UsageError(f"--torch compares the paper's model 1 only; drop --model {args.model}")
    if use_torch and not have_torch():
        raise UsageError(
            "--torch needs PyTorch: pip install -e '.[torch]' (or pip install torch, a CPU build)"
        )

    def log(line: str) -> None:
        if out.mode == "rich":
            out.console.print(f"[dim]{line}[/dim]", highlight=False)
        else:  # stdout keeps the table (or the JSON) alone
            print(line, file=sys.stderr, flush=True)

    if out.mode == "rich":
        out.console.print(
            f"paper model {args.model}, batch {args.batch_size}, {steps} steps per instance, "
            f"{repeats} repeat(s); stacks {', '.join(map(str, args.stacks))}"
        )
    frame = throughput(
        args.stacks,
        steps=steps,
        batch_size=args.batch_size,
        repeats=repeats,
        model=args.model,
        conv_impl=None if args.conv_impl == "auto" else args.conv_impl,
        stack_mode=args.stack_mode,
        torch=use_torch,
        torch_threads=args.torch_threads,
        torch_processes=args.torch_processes,
        torch_compile=args.torch_compile or full,
        log=log,
    )
    if args.csv:
        frame.to_csv(args.csv, index=False)
    if args.json:
        print(json.dumps(throughput_record(frame), indent=1), flush=True)
        return EXIT_OK
    print(format_table(frame), flush=True)
    print(_summary_line(frame), flush=True)
    if steps < FULL_STEPS or repeats < FULL_REPEATS:
        print(
            f"(a quick measurement: {repeats} repeat(s) of {steps} steps; --full runs the "
            f"protocol of benchmarks/RESULTS.md: {FULL_REPEATS} x {FULL_STEPS} steps)",
            flush=True,
        )
    return EXIT_OK


def _summary_line(frame) -> str:
    """One line: the fastest stack, its share of the matmul rate and of the peak, what stacking
    adds, and its ratio to the best PyTorch setup."""
    ours = frame[(frame.framework == "jrobust") & frame.instance_steps_per_s.notna()]
    best = ours.loc[ours.instance_steps_per_s.idxmax()]
    peak = frame.attrs["peak"]
    line = (
        f"best: {best['setup']}, {best['instance_steps_per_s']:.0f} instance-steps/s = "
        f"{100 * best['matmul_fraction']:.0f} % of this machine's float32 matmul rate "
        f"({frame.attrs['matmul_gflops']:.0f} GFLOP/s)"
    )
    if peak.get("gflops"):
        line += f", {100 * best['peak_fraction']:.0f} % of its peak ({peak['gflops']:.0f} GFLOP/s)"
    line += f"; {frame.attrs['step_gflop']:.4f} GFLOP per step"
    if best["vs_stack1"] == best["vs_stack1"]:  # not NaN: stack 1 was timed
        line += f"; {best['vs_stack1']:.2f}x stack 1"
    if "vs_pytorch" in frame and frame.attrs["best_pytorch"]:
        line += f"; {best['vs_pytorch']:.2f}x the best PyTorch ({frame.attrs['best_pytorch']})"
    return line
