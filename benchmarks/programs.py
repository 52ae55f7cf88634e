"""The paper's 6,912-model energy space raced at smoke scale, with programs merged or not.

    python benchmarks/programs.py                      # merge="auto": the whole race
    python benchmarks/programs.py --merge none --sample 24   # 24 of the 768 cohorts, extrapolated

Smoke scale: training subsets of 256 events, 1 epoch, warm-up 3, halving with one instance per
round (the paper's semantics: (k + 2) M - 2 trainings), on the synthetic calorimeter (data set
B). For ``merge="auto"`` the whole race runs and the script reports its wall time, compile
seconds, programs compiled, trainings and padded waste. For ``merge="none"`` (one program per
cohort, 768 of them) it races a random sample of cohorts (every model of each, the same
settings) and extrapolates compile and training time to all 768, saying so.

Prints one JSON object (and, with ``--markdown FILE``, a Markdown table).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import jrobust
from jrobust._src.programs import plan_programs


def population(events: int, test_size: int):
    return jrobust.data.calorimeter(events, "B", test_size=test_size, val_size=0)


def smoke_space():
    return jrobust.paper_space("energy", train_size=256, epochs=1)


def race(space, pop, merge: str, waste: float | None):
    t0 = time.perf_counter()
    result = jrobust.race(
        space, pop, statistic="mean", rule="halving", warmup=3, instances_per_round=1,
        max_instances=20, merge=merge, waste=waste, compilation_cache=False, progress=False,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    t = result.timing
    programs = t.get("programs", [])
    return {
        "merge": merge,
        "waste_bound": waste,
        "models": len(space),
        "wall_seconds": round(wall, 1),
        "compile_seconds": round(float(t["compile_seconds"]), 1),
        "train_seconds": round(float(t["train_seconds"]), 1),
        "programs_compiled": int(t["n_programs"]),
        "executables_compiled": int(t.get("n_compiled", 0)),
        "trainings": int(result.n_trainings),
        "instance_steps": int(result.history.instance_steps.sum()),
        "max_padded_waste": round(max((p["waste"] for p in programs), default=0.0), 3),
        "mean_padded_waste": round(float(np.mean([p["waste"] for p in programs])), 3)
        if programs
        else 0.0,
        "winner": str(result.models.name[result.winner_id]),
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--merge", default="auto", choices=("auto", "none", "max"))
    p.add_argument(
        "--waste", type=float, default=None, help="merge=auto's bound (default: jrobust's)"
    )
    p.add_argument(
        "--sample", type=int, default=24, help="merge=none: cohorts to race and extrapolate from"
    )
    p.add_argument("--events", type=int, default=3000)
    p.add_argument("--test-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--markdown", default=None)
    args = p.parse_args(argv)
    pop = population(args.events, args.test_size)
    space = smoke_space()
    plans = plan_programs(space.models, pop.input_shape, merge=args.merge, waste=args.waste)
    print(f"# {len(space)} models, {space.n_cohorts} cohorts, {len(plans)} programs planned "
          f"(merge={args.merge}); {pop}", flush=True)  # fmt: skip
    if args.merge != "none":
        row = race(space, pop, args.merge, args.waste)
        row["programs_planned"] = len(plans)
    else:
        cohorts = {}
        for i, c in enumerate(space.models):
            cohorts.setdefault(c.static_key(), []).append(i)
        keys = list(cohorts)
        rng = np.random.default_rng(args.seed)
        chosen = rng.choice(len(keys), size=min(args.sample, len(keys)), replace=False)
        ids = sorted(i for k in chosen for i in cohorts[keys[k]])
        sample = jrobust.SearchSpace.from_models([space.models[i] for i in ids])
        row = race(sample, pop, "none", None)
        scale = len(keys) / len(chosen)
        row.update(
            sampled_cohorts=int(len(chosen)),
            cohorts=len(keys),
            extrapolated=True,
            extrapolated_compile_seconds=round(row["compile_seconds"] * scale, 1),
            # a race over all models trains (k + 2) M - 2 instances, the sample its share
            extrapolated_train_seconds=round(row["train_seconds"] * scale, 1),
            extrapolated_wall_seconds=round(row["wall_seconds"] * scale, 1),
        )
    print(json.dumps(row, indent=2), flush=True)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("| " + " | ".join(row) + " |\n|" + "---|" * len(row) + "\n")
            f.write("| " + " | ".join(str(v) for v in row.values()) + " |\n")
    return row


if __name__ == "__main__":
    main()
