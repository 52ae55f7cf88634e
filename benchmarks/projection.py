"""GPU measurements for a lent accelerator: a race round on a large bucket, and a projection of
the paper's full 6912-model energy search (50 epochs, 32k samples, 50 instances) in GPU-hours.

    python benchmarks/projection.py --rate 120000        # project from a measured rate
    python benchmarks/projection.py --race-round         # also time one race round (512 lanes)

The projection counts instance-steps: an instance of paper model 1 at 32k samples, batch 64 and
50 epochs takes 50 · 500 = 25,000 optimizer steps. The exhaustive search trains 6912 × 50
instances; the race (halving, warm-up k, one instance per round) trains
``jrobust.rules.halving_trainings(6912, k)``. Batch sizes of the space vary (32-128), so the
step counts are those of batch 64, the paper's model 1.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import jrobust
from jrobust import zoo
from jrobust.rules import halving_trainings

MODELS, INSTANCES, EPOCHS, TRAIN_SIZE, BATCH = 6912, 50, 50, 32_000, 64


# benchmarks/programs.py on the 2-core CPU (benchmarks/RESULTS.md): the smoke-scale race of the
# 6912-model space compiled 6 programs (merge="auto") in 239.7 s, 40 s each; merge="none" has 768
PROGRAMS_AUTO, PROGRAMS_NONE, COMPILE_SECONDS = 6, 768, 40.0


def projection(
    rate: float,
    warmup: int = 5,
    programs: int = PROGRAMS_AUTO,
    compile_seconds: float = COMPILE_SECONDS,
) -> dict:
    steps = EPOCHS * (TRAIN_SIZE // BATCH)
    exhaustive = MODELS * INSTANCES
    race = halving_trainings(MODELS, warmup)
    return {
        "programs": programs,
        "compile_seconds_per_program": compile_seconds,
        "compile_hours": programs * compile_seconds / 3600,
        "compile_hours_one_program_per_cohort": PROGRAMS_NONE * compile_seconds / 3600,
        "instance_steps_per_s": rate,
        "steps_per_instance": steps,
        "exhaustive_trainings": exhaustive,
        "race_trainings": race,
        "exhaustive_gpu_hours": exhaustive * steps / rate / 3600,
        "race_gpu_hours": race * steps / rate / 3600,
        "paper_reported_trainings": 41_567,
    }


def race_round(models: int = 64, warmup: int = 8, steps: int = 100) -> dict:
    """Time the warm-up round of a 64-model cohort (64 × 8 = 512 instances in one bucket)."""
    rng = np.random.default_rng(0)
    x = rng.gamma(0.5, 0.2, (40_000, 15, 15, 1)).astype(np.float32)
    energy = x.sum(axis=(1, 2, 3)) + 1.0
    pop = jrobust.Population(
        x, np.stack([energy, energy, energy], 1), test_size=2048, target_names=("energy", "x", "y")
    )
    base = zoo.paper_config(1, epochs=1, train_size=BATCH * steps)
    space = jrobust.SearchSpace(
        base,
        learning_rate=list(np.geomspace(1e-4, 1e-2, 8)),
        l2=list(np.geomspace(1e-4, 1e-1, models // 8)),
    )
    t0 = time.perf_counter()
    result = jrobust.race(
        space,
        pop,
        rule="halving",
        statistic="mean",
        warmup=warmup,
        max_instances=warmup + 1,
        progress=_stop_after_warmup,
        compilation_cache=False,
    )
    wall = time.perf_counter() - t0
    h = result.history.iloc[0]
    return {
        "lanes": int(h.trained),
        "train_seconds": float(h.seconds),
        "compile_seconds": float(h.compile_seconds),
        "wall_seconds": wall,
        "instance_steps_per_s": float(h.instance_steps / h.seconds),
    }


def _stop_after_warmup(info):
    raise jrobust.StopRace  # one round (the warm-up) is what is measured


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--rate",
        type=float,
        help="measured instance-steps/s of paper model 1 (else: from the race round)",
    )
    p.add_argument("--race-round", action="store_true")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument(
        "--programs", type=int, default=PROGRAMS_AUTO, help="compiled programs (merge='auto')"
    )
    p.add_argument(
        "--compile-seconds",
        type=float,
        default=COMPILE_SECONDS,
        help="seconds to compile one program (default: measured on the CPU)",
    )
    p.add_argument("--json")
    args = p.parse_args(argv)
    out: dict = {}
    if args.race_round or args.rate is None:
        out["race_round"] = race_round()
        print("race round:", out["race_round"], flush=True)
    rate = args.rate or out["race_round"]["instance_steps_per_s"]
    out["projection"] = projection(rate, args.warmup, args.programs, args.compile_seconds)
    for k, v in out["projection"].items():
        print(f"{k:28s} {v:,.1f}" if isinstance(v, float) else f"{k:28s} {v:,}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
