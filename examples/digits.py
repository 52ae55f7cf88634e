"""A complete race on real data in seconds: small CNNs on scikit-learn's handwritten digits.

scikit-learn's 1797 8x8 digits (bundled, offline): a fixed test split of 20 %, a validation
split of 10 %, and a pool of 1258 images from which every instance draws its training sample.
The space is one small CNN (8 filters, 2x2 max pool, 32 hidden units) under AdamW with 4 learning
rates x 2 weight decays: 8 models that differ only in scalar hyperparameters, so they are one
cohort and one compiled program trains all of them (``min_bucket`` keeps every round at the
warm-up's stack size, so the program is compiled once). The race halves the models on Q3+IQR of
the test error rate (1 - accuracy) after 3 warm-up instances.

    python examples/digits.py             # the default: seconds
    python examples/digits.py --smoke     # even smaller (the test suite's setting)
    python examples/digits.py --full      # 2 architectures x 16 settings, 20 instances

Writes a run folder: ledger.parquet, summary.md, report.html, path.png, distributions.png,
example.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import jrobust
from jrobust.space import build_space

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import plain  # noqa: E402

NAME = "digits"

MODES: dict[str, dict[str, Any]] = {
    "smoke": dict(
        train_size=256,
        epochs=2,
        learning_rates=[1e-3, 1e-2],
        weight_decay=[1e-4],
        warmup=2,
        max_instances=3,
        archs=1,
        bucket=8,
    ),
    "default": dict(
        train_size=1000,
        epochs=10,
        learning_rates=[3e-4, 1e-3, 3e-3, 1e-2],
        weight_decay=[1e-4, 1e-2],
        warmup=3,
        max_instances=10,
        archs=1,
        bucket=32,
    ),
    "full": dict(
        train_size=1000,
        epochs=30,
        learning_rates=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1],
        weight_decay=[1e-4, 1e-2],
        warmup=5,
        max_instances=20,
        archs=2,
        bucket=64,
    ),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="examples/digits.py", description=__doc__.split("\n\n")[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="tiny settings")
    size.add_argument("--full", action="store_true", help="a larger space")
    p.add_argument("--out", type=Path, default=Path("runs/examples") / NAME, help="run folder")
    p.add_argument("--seed", type=int, default=0, help="root seed")
    p.add_argument("-q", "--quiet", action="store_true", help="print the final lines only")
    return p.parse_args(argv)


def space_tables(s: dict[str, Any]) -> list[dict[str, Any]]:
    base = {
        "model": "cnn",
        "conv": [8],
        "pool": [2],
        "dense": [32],
        "outputs": 10,
        "loss": "cross_entropy",
        "metric": "accuracy",
        "optimizer": "adamw",
        "batch_size": 32,
        "epochs": s["epochs"],
        "train_size": s["train_size"],
    }
    choices = {"learning_rate": s["learning_rates"], "weight_decay": s["weight_decay"]}
    tables = [{"base": base, "choices": dict(choices)}]
    if s["archs"] > 1:  # a second cohort: two convolutions, global max pool
        tables.append(
            {"base": {**base, "conv": [16, 32], "pool": [2, "global"]}, "choices": dict(choices)}
        )
    return tables


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = "smoke" if args.smoke else "full" if args.full else "default"
    s = dict(MODES[mode], mode=mode)
    say = (lambda *a: None) if args.quiet else print
    t_start = time.perf_counter()

    pop = jrobust.data.digits(seed=args.seed)
    tables = space_tables(s)
    space = build_space(tables)
    say(f"data: {pop}")
    say(f"space: {space}")

    def progress(info: dict[str, Any]) -> None:
        say(
            f"  round {info['round']}: {info['survivors']} of {info['models']} models left, "
            f"{info['trained']} instances in {info['seconds']:.1f} s "
            f"(+{info['compile_seconds']:.1f} s compiling)"
        )

    race = dict(
        statistic="q3+iqr",
        rule="halving",
        warmup=s["warmup"],
        max_instances=s["max_instances"],
        seed=args.seed,
    )
    result = jrobust.race(space, pop, **race, min_bucket=s["bucket"], progress=progress)
    table = result.summary(top=None)
    say(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))

    command = "python examples/digits.py " + " ".join(sys.argv[1:] if argv is None else argv)
    config = {
        "jrobust": {"version": jrobust.__version__, "example": command.strip()},
        "data": {"source": "digits"},
        "race": race,
        "space": tables,
    }
    out = jrobust.save_run(
        result, args.out, config, info={"data": repr(pop), "command": command.strip()}
    )
    win = table.iloc[0]
    measured = dict(
        example=NAME,
        mode=mode,
        settings=s,
        data=repr(pop),
        winner_id=result.winner_id,
        winner=str(win["name"]),
        winner_mean_error=float(win["mean"]),
        winner_std=float(win["std"]),
        winner_instances=int(win["instances"]),
        n_models=len(space),
        n_trainings=result.n_trainings,
        exhaustive_trainings=len(space) * s["max_instances"],
        timing=result.timing,
        wall_seconds=time.perf_counter() - t_start,
    )
    (out / "example.json").write_text(json.dumps(measured, indent=2, default=plain) + "\n")
    print(
        f"{NAME}: winner {result.winner_id} {win['name']!r}: error rate {win['mean']:.4f} "
        f"+- {win['std']:.4f} over {int(win['instances'])} instances; {result.n_trainings} "
        f"trainings; run folder {out} ({measured['wall_seconds']:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
