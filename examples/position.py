"""Position reconstruction on the calorimeter: a race, models 3 and 4 side by side, the baseline.

The paper's second study (Boldyrev, Ratnikov, Shevelev, IEEE Access 2025): the impact point x of
a photon (cm) from a 15x15 cluster, loss RMSE(x) on a fixed test split, data set B. Model 3 is a
small CNN (PReLU, global max pool, two dense layers); model 4 is the same with the barycentre
(x, y) fed in after the first dense layer (an inductive bias). The paper reports (median over
instances, 32k training samples): model 4 about 0.268 cm, XGBoost about 0.321 cm, the
parametric baseline (the S-shape-corrected barycentre) about 0.46 cm.

This example

1. normalises every cluster by its total energy (the networks see the shower *shape*; the
   position does not depend on the energy scale, and raw cell energies span 1-100 GeV). The
   paper does not say how it scaled its inputs; without this step the CNNs of this short
   training barely learn (RMSE ~0.85 cm against ~0.35 cm with it);
2. races a small paper-like space: variations of model 3 and of model 4 (learning rate x weight
   decay), halving on Q3+IQR of the instance losses;
3. takes the best model of each family (with and without the barycentre) and trains more
   instances of both;
4. scores the parametric baseline (3x3 barycentre with LHCb's asinh S-shape correction, its
   parameter fitted on the pool) and gradient-boosted trees on the normalised cells (scikit-learn,
   a stand-in for the paper's XGBoost, trained on one instance's training sample);
5. writes a run folder: the race tables, summary.md, report.html, path.png, distributions.png,
   position_models.png (the two models against the baselines), example.json and example.md.

    python examples/position.py            # small default: a few minutes on a laptop CPU
    python examples/position.py --smoke    # seconds: the code path only, numbers meaningless
    python examples/position.py --full     # the paper's scale: 6912 models, 32k samples

The race's config.toml describes the space and data, but `jrobust run --space` on it trains on
the raw (not normalised) clusters; rerun this script to reproduce the numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import jrobust

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    best_of_family,
    describe,
    more_instances,
    plain,
    plot_comparison,
    write_example_md,
)  # noqa: E402

from jrobust.space import build_space

NAME = "position"
LABELS = {False: "model 3 (cells only)", True: "model 4 (+ barycentre)"}

MODES: dict[str, dict[str, Any]] = {
    "smoke": dict(
        events=1_000,
        train_size=128,
        epochs=1,
        space="small",
        learning_rates=[1e-3, 3e-3],
        weight_decay=[1e-1],
        warmup=2,
        max_instances=3,
        compare=4,
        gbdt_iter=10,
    ),
    "default": dict(
        events=20_000,
        train_size=2_000,
        epochs=8,
        space="small",
        learning_rates=[3e-4, 1e-3, 3e-3],
        weight_decay=[1e-2, 1e-1],
        warmup=3,
        max_instances=12,
        compare=16,
        gbdt_iter=200,
    ),
    "full": dict(
        events=60_000,
        train_size=32_000,
        epochs=100,
        space="paper",
        warmup=5,
        max_instances=50,
        compare=50,
        gbdt_iter=500,
        instances_per_round=1,  # the paper's semantics, so the training count compares
    ),
}
RACE = dict(statistic="q3+iqr", rule="halving")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="examples/position.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="tiny settings (seconds): the code path")
    size.add_argument("--full", action="store_true", help="the paper's scale (GPU cluster)")
    p.add_argument("--out", type=Path, default=Path("runs/examples") / NAME, help="run folder")
    p.add_argument("--dataset", choices=["A", "B"], default="B", help="calorimeter data set")
    p.add_argument("--events", type=int, help="clusters to generate (default: by mode)")
    p.add_argument("--train-size", type=int, help="training sample per instance")
    p.add_argument("--epochs", type=int, help="epochs per instance")
    p.add_argument("--compare", type=int, help="instances of each family's best model")
    p.add_argument("--seed", type=int, default=0, help="root seed (data subsets, inits)")
    p.add_argument(
        "--raw", action="store_true", help="train on raw cell energies (no normalisation)"
    )
    p.add_argument(
        "--no-gbdt", action="store_true", help="skip the gradient-boosted-trees baseline"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print the final lines only")
    return p.parse_args(argv)


def settings_for(args: argparse.Namespace) -> dict[str, Any]:
    mode = "smoke" if args.smoke else "full" if args.full else "default"
    s = dict(MODES[mode], mode=mode)
    for key in ("events", "train_size", "epochs", "compare"):
        if getattr(args, key) is not None:
            s[key] = getattr(args, key)
    return s


# ------------------------------------------------------------------------------------ data
def normalise_clusters(pop: jrobust.Population) -> jrobust.Population:
    """Every cluster divided by its sum (the shower shape); targets and side features untouched.

    The splits stay the same (they depend only on the event count, split sizes and seed)."""
    total = pop.x.sum(axis=tuple(range(1, pop.x.ndim)), keepdims=True)
    meta = dict(pop.meta)
    meta["preprocess"] = [*pop.meta.get("preprocess", []), {"op": "cluster / its sum"}]
    meta["transformed"] = sorted({*pop.meta.get("transformed", ()), "x"})
    return dataclasses.replace(pop, x=pop.x / np.maximum(total, 1e-3), meta=meta)


# ------------------------------------------------------------------------------------ the space
def space_tables(s: dict[str, Any]) -> list[dict[str, Any]]:
    """The small space as space-file tables (written to config.toml)."""
    common = {"epochs": s["epochs"], "train_size": s["train_size"], "target": "x"}
    choices = {"learning_rate": s["learning_rates"], "weight_decay": s["weight_decay"]}
    return [
        {"base": {"model": "paper3", **common}, "choices": dict(choices)},
        {"base": {"model": "paper4", **common}, "choices": dict(choices)},
    ]


def make_space(s: dict[str, Any]) -> tuple[jrobust.SearchSpace, list[dict[str, Any]]]:
    if s["space"] == "paper":  # 6912 models around model 3, half of them with the barycentre
        return jrobust.paper_space("position", epochs=s["epochs"], train_size=s["train_size"]), []
    tables = space_tables(s)
    return build_space(tables), tables


# ------------------------------------------------------------------------------------ baselines
def gbdt_baseline(pop: jrobust.Population, rows: np.ndarray, max_iter: int) -> float:
    """Gradient-boosted trees on the cells of ``pop`` (scikit-learn; a stand-in for the paper's
    XGBoost): fitted on x of one training sample, scored as RMSE(x) on the test split."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    x = pop.y[:, pop.target_names.index("x")].astype(np.float64)
    cells = pop.x.reshape(pop.n_events, -1)
    model = HistGradientBoostingRegressor(max_iter=max_iter, random_state=0)
    # one OpenMP thread: next to JAX's threads on a small shared CPU, several spin for minutes
    with threadpool_limits(1):
        model.fit(cells[rows], x[rows])
        pred = model.predict(cells[pop.test_index])
    return jrobust.data.rmse(pred, x[pop.test_index])


# ------------------------------------------------------------------------------------ comparison


# ------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    s = settings_for(args)
    say = (lambda *a: None) if args.quiet else print
    t_start = time.perf_counter()
    out = args.out
    phases: dict[str, float] = {}  # wall seconds of each step
    mark = [t_start]

    def lap(step: str) -> None:
        now = time.perf_counter()
        phases[step] = now - mark[0]
        mark[0] = now

    raw = jrobust.data.calorimeter(s["events"], args.dataset, seed=args.seed)
    pop = raw if args.raw else normalise_clusters(raw)
    say(f"data: {pop}" + ("" if args.raw else " (clusters normalised by their sum)"))
    lap("data")
    space, tables = make_space(s)
    say(f"space: {space}")

    def progress(info: dict[str, Any]) -> None:
        say(
            f"  round {info['round']}: {info['survivors']} of {info['models']} models left, "
            f"{info['trained']} instances in {info['seconds']:.0f} s "
            f"(+{info['compile_seconds']:.0f} s compiling), {info['n_trainings']} in all"
        )

    result = jrobust.race(
        space,
        pop,
        **RACE,
        warmup=s["warmup"],
        max_instances=s["max_instances"],
        instances_per_round=s.get("instances_per_round", "auto"),
        seed=args.seed,
        progress=progress,
    )
    say(
        f"race: winner {result.winner_id} {result.models.name[result.winner_id]!r}, "
        f"{result.n_trainings} trainings in {result.timing['wall_seconds']:.0f} s"
    )

    lap("race")
    samples, rows = {}, []
    for with_side in (False, True):
        m = best_of_family(result, with_side)
        losses = more_instances(
            result.configs[m], pop, result.losses(m), max(s["compare"], 2), args.seed
        )
        label = LABELS[with_side]
        samples[label] = losses
        rows.append(dict(family=label, model_id=m, name=result.models.name[m], **describe(losses)))
    lap("compare")

    parametric = "parametric (S-shape-corrected barycentre)"
    baselines = {parametric: jrobust.data.position_baseline(raw, "x")}
    if not args.no_gbdt:
        subset = pop.subset_indices([0], s["train_size"], seed=args.seed)[0]
        baselines["gradient-boosted trees"] = gbdt_baseline(pop, subset, s["gbdt_iter"])
    lap("baselines")
    for row in rows:
        row["beats_parametric"] = float(np.mean(samples[row["family"]] < baselines[parametric]))

    out.mkdir(parents=True, exist_ok=True)
    plot_comparison(
        samples,
        baselines,
        "instance test loss RMSE(x), cm",
        f"Position x, data set {args.dataset}: {s['train_size']} training samples x {s['epochs']} "
        "epoch(s) per instance",
        out / f"{NAME}_models.png",
    )
    table = pd.DataFrame(rows)
    measured = dict(
        example=NAME,
        mode=s["mode"],
        settings=s,
        data=repr(pop),
        normalised=not args.raw,
        baselines=baselines,
        models=rows,
        losses={k: [float(x) for x in v] for k, v in samples.items()},
        race=dict(
            winner_id=result.winner_id,
            winner=str(result.models.name[result.winner_id]),
            n_models=len(result.models),
            n_trainings=result.n_trainings,
            timing=result.timing,
        ),
        phases=phases,
        wall_seconds=None,
    )
    command = "python examples/position.py " + " ".join(sys.argv[1:] if argv is None else argv)
    config = {
        "jrobust": {
            "version": jrobust.__version__,
            "example": command.strip(),
            "note": "inputs: each cluster divided by its sum" if not args.raw else "raw",
        },
        "data": {"source": f"calo-{args.dataset.lower()}", "events": s["events"]},
        "race": {
            **RACE,
            "warmup": s["warmup"],
            "max_instances": s["max_instances"],
            "instances_per_round": s.get("instances_per_round", "auto"),
            "seed": args.seed,
        },
    }
    if tables:
        config["space"] = tables
    jrobust.save_run(result, out, config, info={"data": repr(pop), "command": command.strip()})
    lap("save")
    measured["wall_seconds"] = time.perf_counter() - t_start
    write_outputs(out, measured, table, baselines, s)
    say(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    for k, v in baselines.items():
        say(f"baseline {k}: {v:.4g}")
    print(f"{NAME}: run folder {out} ({measured['wall_seconds']:.0f} s)")
    return 0


def write_outputs(out: Path, measured: dict, table: pd.DataFrame, baselines: dict, s: dict) -> None:
    (out / "example.json").write_text(json.dumps(measured, indent=2, default=plain) + "\n")
    lines = [
        f"# Position reconstruction ({s['mode']} settings)",
        "",
        f"Data: {measured['data']}"
        + (", clusters normalised by their sum" if measured["normalised"] else ""),
        "",
        "Best model of each family, instance losses RMSE(x) in cm on the test split:",
        "",
        "| family | model | n | mean | median | std | PD | min | max | beats parametric |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.family} | #{r.model_id} {r.name} | {r.instances} | {r.mean:.4g} | "
            f"{r.median:.4g} | {r.std:.2g} | {r.pd:.2g} | {r.min:.4g} | {r.max:.4g} | "
            f"{r.beats_parametric:.0%} |"
        )
    lines += [
        "",
        *(f"- baseline {k}: {v:.4g} cm" for k, v in baselines.items()),
    ]
    write_example_md(out, lines, f"{NAME}_models.png", "models and baselines")


if __name__ == "__main__":
    raise SystemExit(main())
