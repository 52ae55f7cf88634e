"""XLA's backend optimisation level: compile seconds against training speed of a stack.

    python benchmarks/opt_level.py                  # levels 0-3, paper model 1, stack 8
    python benchmarks/opt_level.py --stack 16 --rounds 3

Each level runs in its own process (``XLA_FLAGS=--xla_backend_optimization_level=L`` is read when
XLA starts), and the levels are interleaved over ``--rounds`` rounds, so every level sees the
same machine; the best round counts. Each process compiles the stack trainer of the paper's
energy model 1 (batch 64) once, then times a call of ``--steps`` steps per instance.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys


def child(stack: int, steps: int) -> None:
    import time

    import numpy as np

    from jrobust._src.bench import _population
    from jrobust.train import train_stack
    from jrobust.zoo import paper_config

    pop = _population(steps * 64, 256, 0)
    config = paper_config(1, epochs=1, train_size=steps * 64, side_features=(), target=None,
                          name=None)  # fmt: skip
    first = train_stack([config] * stack, np.arange(stack), pop)
    t0 = time.perf_counter()
    train_stack([config] * stack, np.arange(stack) + stack, pop)
    seconds = time.perf_counter() - t0
    print(json.dumps({"compile_seconds": first["compile_seconds"],
                      "instance_steps_per_s": stack * steps / seconds}))  # fmt: skip


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--levels", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--stack", type=int, default=8)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.stack, args.steps)
        return []
    best: dict[int, dict] = {}
    for _ in range(args.rounds):
        for level in args.levels:
            env = dict(os.environ, XLA_FLAGS=f"--xla_backend_optimization_level={level}",
                       JROBUST_CACHE_DIR=os.environ.get("JROBUST_CACHE_DIR", "/tmp/jrobust-opt"))  # fmt: skip
            env.pop("JAX_COMPILATION_CACHE_DIR", None)
            done = subprocess.run(
                [sys.executable, __file__, "--child", "--stack", str(args.stack), "--steps",
                 str(args.steps)], env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            row = json.loads(done.stdout.strip().splitlines()[-1])
            old = best.get(level)
            best[level] = {
                "level": level,
                "compile_seconds": min(row["compile_seconds"], old["compile_seconds"])
                if old
                else row["compile_seconds"],
                "instance_steps_per_s": max(
                    row["instance_steps_per_s"], old["instance_steps_per_s"]
                )
                if old
                else row["instance_steps_per_s"],
            }
            print(f"level {level}: {row}", flush=True)
    rows = [best[level] for level in args.levels]
    top = max(r["instance_steps_per_s"] for r in rows)
    print("| level | compile s | instance-steps/s | speed vs best |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['level']} | {r['compile_seconds']:.1f} | {r['instance_steps_per_s']:.0f} | "
              f"{r['instance_steps_per_s'] / top:.2f} |")  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
