"""Robustness against the training-sample size: energy models 1 and 2 from 100 to 32,000 samples.

The paper's sample-size study (Boldyrev, Ratnikov, Shevelev, IEEE Access 2025): many instances
of a model at each training-sample size, log-spaced from 100 to 32,000 (50 instances each). The
spread of the instance losses shrinks strongly above ~10^4 samples, and the inductive bias (model
2: the total cluster energy fed in next to the convolutional features) reduces the data needed
for a robust model.

This example trains, for energy models 1 and 2, ``--instances`` instances at every size (one
``jrobust.exhaustive`` call: each (model, size) pair is one cohort, one compiled program), and
reports the mean, median, standard deviation and PD = Q90 - Q10 of the instance losses per size.

Training budget: every size gets the same number of optimisation steps, namely what the largest
size gets in ``--epochs`` epochs (the paper defines quality "after a fixed number of iterations
or at early stopping"). With a fixed number of *epochs* instead, the small samples would also get
a few dozen steps and the study would mostly measure under-training; ``--fixed-epochs`` does that
if you want it. Instance ``i`` of every size draws nested subsets (the subset of 100 is a prefix
of the subset of 1000), so the sizes are compared on common random numbers.

    python examples/sample_size.py            # default: 100..4000, 8 instances, a few minutes
    python examples/sample_size.py --smoke    # seconds: the code path only
    python examples/sample_size.py --full     # 100..32,000 (10 sizes), 50 instances, 50 epochs

Writes a run folder with sample_size.parquet, sample_size.png (median and quantile bands per
model), sample_size_stats.png (mean, std and PD against the size), the ledger, summary.md,
report.html, example.json and example.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import jrobust
from jrobust.space import build_space

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import plain  # noqa: E402

NAME = "sample_size"
LABELS = {1: "model 1 (cells only)", 2: "model 2 (+ total energy)"}

MODES: dict[str, dict[str, Any]] = {
    "smoke": dict(events=1_000, sizes=[64, 128], instances=3, epochs=1, lr1=1e-3),
    "default": dict(events=20_000, sizes=[100, 340, 1200, 4000], instances=8, epochs=4, lr1=1e-3),
    "full": dict(
        events=60_000,
        sizes=[100, 190, 360, 680, 1300, 2400, 4600, 8700, 17000, 32000],
        instances=50,
        epochs=50,
        lr1=None,
    ),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="examples/sample_size.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="tiny settings (seconds): the code path")
    size.add_argument("--full", action="store_true", help="the paper's scale (GPU cluster)")
    p.add_argument("--out", type=Path, default=Path("runs/examples") / NAME, help="run folder")
    p.add_argument("--dataset", choices=["A", "B"], default="B", help="calorimeter data set")
    p.add_argument("--events", type=int, help="clusters to generate (default: by mode)")
    p.add_argument(
        "--sizes",
        type=lambda t: [int(v) for v in t.split(",")],
        help="comma-separated training-sample sizes",
    )
    p.add_argument("--instances", type=int, help="instances per model and size")
    p.add_argument("--epochs", type=int, help="epochs of the largest size (sets the step budget)")
    p.add_argument(
        "--fixed-epochs",
        action="store_true",
        help="train every size for --epochs epochs instead of a fixed step budget",
    )
    p.add_argument(
        "--lr1",
        type=float,
        help="model 1's learning rate (paper: 1e-4; the short default uses 1e-3)",
    )
    p.add_argument("--seed", type=int, default=0, help="root seed (data subsets, inits)")
    p.add_argument("-q", "--quiet", action="store_true", help="print the final lines only")
    return p.parse_args(argv)


def settings_for(args: argparse.Namespace) -> dict[str, Any]:
    mode = "smoke" if args.smoke else "full" if args.full else "default"
    s = dict(MODES[mode], mode=mode, fixed_epochs=args.fixed_epochs)
    for key in ("events", "sizes", "instances", "epochs", "lr1"):
        if getattr(args, key) is not None:
            s[key] = getattr(args, key)
    s["sizes"] = sorted(set(s["sizes"]))
    return s


def epochs_for(size: int, batch: int, s: dict[str, Any]) -> int:
    """Epochs at ``size`` so that it gets the steps of the largest size in ``s['epochs']`` epochs."""
    if s["fixed_epochs"]:
        return s["epochs"]
    steps = s["epochs"] * (max(s["sizes"]) // batch)
    return max(1, math.ceil(steps / max(size // batch, 1)))


def space_tables(s: dict[str, Any]) -> list[dict[str, Any]]:
    """One space table per (model, size): written to config.toml, readable by `jrobust run`."""
    tables = []
    for n in (1, 2):
        base = jrobust.zoo.paper_config(n)
        extra = {"learning_rate": s["lr1"]} if n == 1 and s["lr1"] is not None else {}
        for size in s["sizes"]:
            tables.append(
                {
                    "base": {
                        "model": f"paper{n}",
                        "train_size": size,
                        "epochs": epochs_for(size, base.batch_size, s),
                        **extra,
                    }
                }
            )
    return tables


def stats_by_size(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (model, size), g in frame.groupby(["model", "train_size"], sort=True):
        v = g["loss"].to_numpy(float)
        f = v[np.isfinite(v)]
        rows.append(
            dict(
                model=model,
                train_size=int(size),
                epochs=int(g["epochs"].iloc[0]),
                steps=int(g["steps"].iloc[0]),
                instances=v.size,
                failed=int(v.size - f.size),
                mean=f.mean(),
                median=np.median(f),
                std=f.std(ddof=1) if f.size > 1 else 0.0,
                pd=np.quantile(f, 0.9) - np.quantile(f, 0.1),
            )
        )
    return pd.DataFrame(rows)


def plot_stats(table: pd.DataFrame, path: Path, title: str) -> None:
    """Mean, std and PD of the instance losses against the sample size, one line per model."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    from jrobust.plots import save_figure

    fig = Figure(figsize=(11.0, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    colors = ["#1f77b4", "#d62728"]
    for ax, col, label in zip(
        axes,
        ("mean", "std", "pd"),
        ("mean loss", "std (robustness)", "PD = Q90 - Q10 (robustness)"),
        strict=True,
    ):
        for j, (model, g) in enumerate(table.groupby("model", sort=True)):
            ax.plot(g["train_size"], g[col], marker="o", color=colors[j % 2], label=model)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 1000, not 10^3
        values = table[col].to_numpy(float)
        if values.min() > 0 and values.max() / values.min() > 10:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(FuncFormatter(_minor_label))
        else:
            ax.set_ylim(bottom=0)
        ax.set_xlabel("training-sample size")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("RMSE(E)/E of the instances")
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def _minor_label(v: float, _pos: int) -> str:
    """Label the minor ticks 2, 3 and 5 of each decade, leave the others blank."""
    lead = round(v / 10 ** np.floor(np.log10(v))) if v > 0 else 0
    return f"{v:g}" if lead in (2, 3, 5) else ""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    s = settings_for(args)
    say = (lambda *a: None) if args.quiet else print
    t_start = time.perf_counter()
    out = args.out

    pop = jrobust.data.calorimeter(s["events"], args.dataset, seed=args.seed)
    if max(s["sizes"]) > pop.pool_size:
        print(
            f"error: the largest size {max(s['sizes'])} exceeds the pool of {pop.pool_size} "
            f"events; raise --events",
            file=sys.stderr,
        )
        return 2
    tables = space_tables(s)
    space = build_space(tables)
    say(f"data: {pop}")
    say(
        f"space: {len(space)} models (2 models x {len(s['sizes'])} sizes), "
        f"{s['instances']} instances each"
    )

    def progress(info: dict[str, Any]) -> None:
        say(
            f"  trained {info['trained']} instances in {info['seconds']:.0f} s "
            f"(+{info['compile_seconds']:.0f} s compiling)"
        )

    result = jrobust.exhaustive(
        space,
        pop,
        instances=s["instances"],
        statistic="std",
        rank_by="mean",
        seed=args.seed,
        progress=progress,
    )
    configs = result.configs
    names = [f"model {1 if not c.side_features else 2}, n={c.train_size}" for c in configs]
    result.models["name"] = names
    led = result.ledger.merge(result.models[["model_id"]], on="model_id")
    frame = pd.DataFrame(
        {
            "model": [LABELS[1 if not configs[m].side_features else 2] for m in led.model_id],
            "train_size": [configs[m].train_size for m in led.model_id],
            "epochs": [configs[m].epochs for m in led.model_id],
            "steps": [
                configs[m].epochs * (configs[m].train_size // configs[m].batch_size)
                for m in led.model_id
            ],
            "instance": led.instance.to_numpy(),
            "loss": led.loss.to_numpy(),
        }
    )
    table = stats_by_size(frame)

    command = "python examples/sample_size.py " + " ".join(sys.argv[1:] if argv is None else argv)
    config = {
        "jrobust": {"version": jrobust.__version__, "example": command.strip()},
        "data": {"source": f"calo-{args.dataset.lower()}", "events": s["events"]},
        "race": {
            "statistic": "std",
            "rank_by": "mean",
            "rule": "none (exhaustive)",
            "warmup": s["instances"],
            "max_instances": s["instances"],
            "seed": args.seed,
        },
        "space": tables,
    }
    budget = (
        "fixed epochs"
        if s["fixed_epochs"]
        else f"fixed steps ({s['epochs']} epochs of the largest size)"
    )
    jrobust.save_run(
        result, out, config, sample_size=frame, info={"data": repr(pop), "command": command.strip()}
    )
    plot_stats(
        table,
        out / "sample_size_stats.png",
        f"Energy, data set {args.dataset}: {s['instances']} instances per point, {budget}",
    )
    measured = dict(
        example=NAME,
        mode=s["mode"],
        settings=s,
        data=repr(pop),
        budget=budget,
        table=table.to_dict(orient="records"),
        timing=result.timing,
        n_trainings=result.n_trainings,
        wall_seconds=time.perf_counter() - t_start,
    )
    (out / "example.json").write_text(json.dumps(measured, indent=2, default=plain) + "\n")
    lines = [
        f"# Robustness against the training-sample size ({s['mode']} settings)",
        "",
        f"Data: {pop!r}. Training budget: {budget}.",
        "",
        "| model | train size | epochs | steps | n | mean | median | std | PD |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.model} | {r.train_size} | {r.epochs} | {r.steps} | {r.instances} | "
            f"{r.mean:.4g} | {r.median:.4g} | {r.std:.2g} | {r.pd:.2g} |"
        )
    lines += ["", "![sample size](sample_size.png)", "", "![statistics](sample_size_stats.png)", ""]
    (out / "example.md").write_text("\n".join(lines))
    say(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"{NAME}: run folder {out} ({measured['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
