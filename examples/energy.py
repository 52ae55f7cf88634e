"""Energy reconstruction on the calorimeter: a race, models 1 and 2 side by side, the baseline.

The paper's first study (Boldyrev, Ratnikov, Shevelev, IEEE Access 2025): photon energy from a
15x15 cluster of cell energies, loss RMSE(E)/E on a fixed test split, data set B. Model 1 is a
small CNN; model 2 is the same CNN with the total cluster energy fed in next to the convolutional
features (an inductive bias). The paper reports (median over instances, 32k training samples):
model 2 about 0.0229 with a narrow spread, the parametric baseline (calibrated sum of the cells)
about 0.0238, XGBoost about 0.0271.

This example

1. races a small paper-like space: variations of model 1 (learning rate x L2) and of model 2
   (learning rate x weight decay), halving on Q3+IQR of the instance losses (a level-and-spread
   statistic: a model whose instances sometimes fail is dropped even if its median is good);
2. takes the best model of each family (with and without the side feature) and trains more
   instances of both, so their instance-loss distributions can be compared side by side; by
   default these finalists train longer than the race's instances (16,000 samples x 15 epochs
   with a cosine schedule: the race only has to rank, the comparison needs converged models,
   and the paper's model 2 beats the calibrated sum only when trained long enough);
3. scores the parametric baseline (the calibrated sum of deposits) and, as a stand-in for the
   paper's XGBoost, scikit-learn's gradient-boosted trees on the cells (trained on one instance's
   training sample);
4. writes a run folder: the race tables, summary.md, report.html, path.png, distributions.png, and
   energy_models.png (the two models against the baselines), example.json and example.md.

    python examples/energy.py            # default: under 10 minutes on 2 CPU cores
    python examples/energy.py --smoke    # seconds: the code path only, numbers meaningless
    python examples/energy.py --full     # the paper's scale: 6912 models, 32k samples, 50 epochs

Instance ``i`` of every model trains on the same subset of the pool (common random numbers) and
any instance re-run alone gives the same loss, so the extra instances of step 2 continue the
race's ledger exactly.
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

NAME = "energy"
LABELS = {False: "model 1 (cells only)", True: "model 2 (+ total energy)"}

# Each mode: the data, the space, the race and the comparison.
MODES: dict[str, dict[str, Any]] = {
    "smoke": dict(
        events=1_000,
        train_size=128,
        epochs=1,
        space="small",
        learning_rates=[1e-3, 3e-3],
        l2=[1e-2],
        weight_decay=[1e-1],
        warmup=2,
        max_instances=3,
        compare=4,
        gbdt_iter=10,
        final=None,  # the finalists continue the race's ledger at the race's settings
    ),
    "default": dict(
        events=30_000,
        train_size=2_000,
        epochs=6,
        space="small",
        learning_rates=[3e-4, 1e-3, 3e-3],
        l2=[1e-3, 1e-2],
        weight_decay=[1e-2, 1e-1],
        warmup=3,
        max_instances=12,
        compare=8,
        gbdt_iter=200,
        final=dict(train_size=16_000, epochs=15, schedule="cosine"),
    ),
    "full": dict(
        events=60_000,
        train_size=32_000,
        epochs=50,
        space="paper",
        warmup=5,
        max_instances=50,
        compare=50,
        gbdt_iter=500,
        instances_per_round=1,  # the paper's semantics, so the training count compares
        final=None,  # the race already trains at the paper's 32k x 50
    ),
}
RACE = dict(statistic="q3+iqr", rule="halving")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="examples/energy.py",
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


# ------------------------------------------------------------------------------------ the space
def space_tables(s: dict[str, Any]) -> list[dict[str, Any]]:
    """The small space as space-file tables (written to config.toml, readable by `jrobust run`)."""
    common = {"epochs": s["epochs"], "train_size": s["train_size"]}
    return [
        {
            "base": {"model": "paper1", **common},
            "choices": {"learning_rate": s["learning_rates"], "l2": s["l2"]},
        },
        {
            "base": {"model": "paper2", **common},
            "choices": {"learning_rate": s["learning_rates"], "weight_decay": s["weight_decay"]},
        },
    ]


def make_space(s: dict[str, Any]) -> tuple[jrobust.SearchSpace, list[dict[str, Any]]]:
    if s["space"] == "paper":  # 6912 models around model 1, half of them with the side feature
        return jrobust.paper_space("energy", epochs=s["epochs"], train_size=s["train_size"]), []
    tables = space_tables(s)
    return build_space(tables), tables


# ------------------------------------------------------------------------------------ baselines
def gbdt_baseline(pop: jrobust.Population, rows: np.ndarray, max_iter: int) -> float:
    """Gradient-boosted trees on the 225 cells (scikit-learn; a stand-in for the paper's
    XGBoost): fitted on ``log E`` of one training sample, scored as RMSE(E)/E on the test split."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    e = pop.y[:, pop.target_names.index("energy")].astype(np.float64)
    cells = pop.x.reshape(pop.n_events, -1)
    model = HistGradientBoostingRegressor(max_iter=max_iter, random_state=0)
    # one OpenMP thread: next to JAX's threads on a small shared CPU, several spin for minutes
    with threadpool_limits(1):
        model.fit(cells[rows], np.log(e[rows]))
        pred = np.exp(model.predict(cells[pop.test_index]))
    return jrobust.data.relative_rmse(pred, e[pop.test_index])


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

    pop = jrobust.data.calorimeter(s["events"], args.dataset, seed=args.seed)
    say(f"data: {pop}")
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
    # the best model of each family, with more instances (trained longer with "final" settings)
    samples, rows = {}, []
    for with_side in (False, True):
        m = best_of_family(result, with_side)
        config, have = result.configs[m], result.losses(m)
        if s.get("final"):
            config, have = dataclasses.replace(config, **s["final"]), np.zeros(0)
        losses = more_instances(config, pop, have, max(s["compare"], 2), args.seed)
        label = LABELS[with_side]
        samples[label] = losses
        rows.append(dict(family=label, model_id=m, name=result.models.name[m], **describe(losses)))
    lap("compare")

    # the baselines
    baselines = {"parametric (calibrated sum)": jrobust.data.energy_baseline(pop)}
    if not args.no_gbdt:
        subset = pop.subset_indices([0], s["train_size"], seed=args.seed)[0]
        baselines["gradient-boosted trees"] = gbdt_baseline(pop, subset, s["gbdt_iter"])
    lap("baselines")
    for row in rows:
        row["beats_parametric"] = float(
            np.mean(samples[row["family"]] < baselines["parametric (calibrated sum)"])
        )

    out.mkdir(parents=True, exist_ok=True)
    final = {"train_size": s["train_size"], "epochs": s["epochs"], **(s.get("final") or {})}
    plot_comparison(
        samples,
        baselines,
        "instance test loss RMSE(E)/E",
        f"Energy, data set {args.dataset}: {final['train_size']} training samples x "
        f"{final['epochs']} epoch(s) per instance",
        out / f"{NAME}_models.png",
    )
    table = pd.DataFrame(rows)
    measured = dict(
        example=NAME,
        mode=s["mode"],
        settings=s,
        data=repr(pop),
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
    command = "python examples/energy.py " + " ".join(sys.argv[1:] if argv is None else argv)
    config = {
        "jrobust": {"version": jrobust.__version__, "example": command.strip()},
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
        f"# Energy reconstruction ({s['mode']} settings)",
        "",
        f"Data: {measured['data']}",
        "",
        "Best model of each family, instance losses RMSE(E)/E on the test split:",
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
        *(f"- baseline {k}: {v:.4g}" for k, v in baselines.items()),
    ]
    write_example_md(out, lines, f"{NAME}_models.png", "models and baselines")


if __name__ == "__main__":
    raise SystemExit(main())
