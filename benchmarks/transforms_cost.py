"""What evaluating transformed test sets costs: one stack with T = 0, 11 and 33 sets.

    python benchmarks/transforms_cost.py                 # digits CNN, stack 8, 10 epochs
    python benchmarks/transforms_cost.py --stack 16 --epochs 20 --repeats 3

Every instance is evaluated on each transformed copy of its test split inside its compiled
program, after training (``jrobust.data.with_transforms``). This times the same stack of a small
digits CNN (1,000 training images, batch 32) with no transformed sets, with the 11 sets of
``examples/transformations.py`` (6 angles, 5 scale factors) and with 33 (every 3 degrees from 0
to 96): the compile seconds, the seconds of one call (best of ``--repeats``, interleaved), and
the losses of the untransformed test set, which must not change. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import jrobust
from jrobust.data import with_transforms

GRIDS = {
    "none": {},
    "11 sets": dict(rotation=[0, 15, 30, 45, 60, 90], scale=[0.6, 0.8, 1.0, 1.25, 1.5]),
    "33 sets": dict(rotation=list(range(0, 99, 3))),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stack", type=int, default=8, help="instances in the stack")
    p.add_argument("--epochs", type=int, default=10, help="epochs per instance")
    p.add_argument("--repeats", type=int, default=2, help="timed calls per grid, best counts")
    a = p.parse_args()
    digits = jrobust.data.digits()
    config = jrobust.zoo.cnn_config(
        conv=(16, 32),
        pool=(2, "global"),
        dense=(64,),
        outputs=10,
        loss="cross_entropy",
        metric="accuracy",
        epochs=a.epochs,
        train_size=1000,
        batch_size=32,
    )
    pops = {name: with_transforms(digits, **g) if g else digits for name, g in GRIDS.items()}
    configs, instances = [config] * a.stack, np.arange(a.stack)
    compile_s, best, losses = {}, {n: np.inf for n in pops}, {}
    for name, pop in pops.items():
        out = jrobust.train_stack(configs, instances, pop)
        compile_s[name], losses[name] = out["compile_seconds"], out["loss"]
    for _ in range(a.repeats):
        for name, pop in pops.items():
            t0 = time.perf_counter()
            jrobust.train_stack(configs, instances, pop)
            best[name] = min(best[name], time.perf_counter() - t0)
    steps = a.stack * a.epochs * (1000 // 32)
    print(f"digits CNN, stack {a.stack}, {a.epochs} epochs ({steps} instance-steps per call)\n")
    print(
        "| transformed test sets | compile s | s / call | vs none | max abs. change of the loss |"
    )
    print("|---|---:|---:|---:|---:|")
    for name in pops:
        change = float(np.max(np.abs(losses[name] - losses["none"])))
        print(
            f"| {name} | {compile_s[name]:.1f} | {best[name]:.2f} | "
            f"{best[name] / best['none']:.2f}x | {change:.1e} |"
        )


if __name__ == "__main__":
    main()
