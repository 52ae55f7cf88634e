"""Initialisation noise against sampling noise: many instances of one model, three ways.

The paper (Boldyrev, Ratnikov, Shevelev, IEEE Access 2025) trains 1000 instances of one model to
separate the two sources of the spread of instance losses: (a) internal randomness (the weight
initialisation, and with it the optimizer's path) and (b) the training sample, drawn afresh from
the population. This example trains ``--instances`` instances of the paper's energy model 2 in
each of three ways and draws the three loss distributions in one figure:

- **init only**: every instance trains on the *same* training sample, in the same mini-batch
  order; only the initial weights differ;
- **sample only**: every instance starts from the *same* initial weights; only the training
  sample differs (drawn afresh from the pool for each instance);
- **both**: the usual instances of a race (new weights and a new sample each).

How, with jrobust's public API: a compiled stack trainer (``jrobust.make_trainer``) takes, per
lane, a *model hash* and an *instance index* (the initial weights come from the key
``(seed, model hash, instance)``, the mini-batch order from ``(seed, instance)``) and the event
indices of the training sample. ``jrobust.train_instances`` ties all three to the instance
number; calling the trainer directly separates them:

| variant | model hash | instance index | training sample |
|---|---|---|---|
| init only | ``h + k`` (k = 0..N-1) | 0 | the sample of instance 0 |
| sample only | ``h`` | 0 | the sample of instance k |
| both | ``h`` | k | the sample of instance k (exactly ``train_instances``) |

where ``h = jrobust.train.model_hash(config)``. In "sample only" the mini-batch order is the
same *permutation of positions*, applied to a different sample, so the order of the events is new
too; the only thing held fixed is the initialisation.

    python examples/init_vs_sampling.py            # default: 32 instances per variant, minutes
    python examples/init_vs_sampling.py --smoke    # seconds: the code path only
    python examples/init_vs_sampling.py --full     # the paper's 1000 instances, 32k samples

Writes a run folder (the three variants as the "models" of an exhaustive run, so the ledger,
summary.md, report.html and distributions.png are there) plus init_vs_sampling.png, example.json
and example.md. A Levene test says whether the spreads differ.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

import jrobust
from jrobust.train import SCALAR_FIELDS, Lanes, model_hash, shared_for

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import plain  # noqa: E402

NAME = "init_vs_sampling"
VARIANTS = ("init only", "sample only", "both")

MODES: dict[str, dict[str, Any]] = {
    "smoke": dict(events=1_000, train_size=128, epochs=1, instances=4, stack=8),
    "default": dict(events=20_000, train_size=2_000, epochs=5, instances=32, stack=32),
    "full": dict(events=60_000, train_size=32_000, epochs=50, instances=1000, stack=250),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="examples/init_vs_sampling.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="tiny settings (seconds): the code path")
    size.add_argument("--full", action="store_true", help="the paper's scale (GPU)")
    p.add_argument("--out", type=Path, default=Path("runs/examples") / NAME, help="run folder")
    p.add_argument("--model", type=int, choices=[1, 2, 3, 4], default=2, help="the paper's model")
    p.add_argument("--dataset", choices=["A", "B"], default="B", help="calorimeter data set")
    p.add_argument("--events", type=int, help="clusters to generate (default: by mode)")
    p.add_argument("--train-size", type=int, help="training sample per instance")
    p.add_argument("--epochs", type=int, help="epochs per instance")
    p.add_argument("--instances", type=int, help="instances per variant")
    p.add_argument("--stack", type=int, help="instances per compiled call")
    p.add_argument("--seed", type=int, default=0, help="root seed")
    p.add_argument("-q", "--quiet", action="store_true", help="print the final lines only")
    return p.parse_args(argv)


def settings_for(args: argparse.Namespace) -> dict[str, Any]:
    mode = "smoke" if args.smoke else "full" if args.full else "default"
    s = dict(MODES[mode], mode=mode, model=args.model)
    for key in ("events", "train_size", "epochs", "instances", "stack"):
        if getattr(args, key) is not None:
            s[key] = getattr(args, key)
    return s


class LaneTrainer:
    """Trains lanes ``(model hash, instance index, training sample)`` of one model, in stacks."""

    def __init__(self, config: jrobust.ModelConfig, pop: jrobust.Population, seed: int, stack: int):
        self.config, self.pop, self.seed, self.stack = config, pop, seed, stack
        self.trainer = jrobust.make_trainer(config, pop)  # jitted; compiles once per stack size
        self.shared = shared_for(pop, seed)  # the population on the device, placed once
        self.hyper = {f: np.full(stack, getattr(config, f), np.float32) for f in SCALAR_FIELDS}
        self.hash = model_hash(config)

    def subsets(self, instances: np.ndarray) -> np.ndarray:
        return self.pop.subset_indices(
            instances, self.config.train_size, seed=self.seed, bootstrap=self.config.bootstrap
        )

    def train(self, hashes: np.ndarray, instances: np.ndarray, subsets: np.ndarray) -> np.ndarray:
        n, b = len(hashes), self.stack
        losses = []
        for start in range(0, n, b):
            part = slice(start, min(start + b, n))
            k = part.stop - part.start
            pad = np.r_[np.arange(part.start, part.stop), np.full(b - k, part.stop - 1)]
            lanes = Lanes(
                values=self.hyper,
                model_hash=np.asarray(hashes, np.int32)[pad],
                instance=np.asarray(instances, np.int32)[pad],
                subset=np.asarray(subsets, np.int32)[pad],
            )
            res = self.trainer(lanes, self.shared)
            loss, ok = np.asarray(res.loss)[:k], np.asarray(res.ok)[:k]
            losses.append(np.where(ok, loss, np.inf))
        return np.concatenate(losses)

    def variant(self, name: str, k: np.ndarray) -> np.ndarray:
        """Losses of lanes ``k`` of one variant (see the module docstring's table)."""
        zero = np.zeros_like(k)
        if name == "init only":
            hashes = (self.hash + k) % (2**31 - 1)
            return self.train(hashes, zero, np.repeat(self.subsets(np.array([0])), len(k), 0))
        if name == "sample only":
            return self.train(np.full_like(k, self.hash), zero, self.subsets(k))
        if name == "both":
            return self.train(np.full_like(k, self.hash), k, self.subsets(k))
        raise ValueError(name)


def plot_three(samples: dict[str, np.ndarray], path: Path, title: str, xlabel: str) -> None:
    """The three distributions in one figure: overlaid histograms and box plots."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from jrobust.plots import save_figure

    fig = Figure(figsize=(9.0, 5.2), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2.2, 1.3])
    colors = {"init only": "#1f77b4", "sample only": "#ff7f0e", "both": "#2ca02c"}
    finite = {k: v[np.isfinite(v)] for k, v in samples.items()}
    fence = far_out_fence(np.concatenate(list(finite.values())))
    shown = np.concatenate([v[v <= fence] for v in finite.values()])
    lo, hi = shown.min(), shown.max()
    bins = np.linspace(lo, hi, max(8, min(40, shown.size // 6)))
    for name, v in finite.items():
        beyond = int((v > fence).sum())
        top.hist(v[v <= fence], bins=bins, histtype="stepfilled", alpha=0.25, color=colors[name])
        top.hist(
            v[v <= fence],
            bins=bins,
            histtype="step",
            lw=1.6,
            color=colors[name],
            label=f"{name}: median {np.median(v):.4g}, IQR {_iqr(v):.2g}, "
            f"PD {np.quantile(v, 0.9) - np.quantile(v, 0.1):.2g}"
            + (f"; {beyond} far out (> {fence:.3g}), not drawn" if beyond else ""),
        )
    top.set_ylabel("instances")
    top.legend(fontsize=8)
    top.set_title(title, fontsize=10)
    names = list(finite)
    box = bottom.boxplot(
        [finite[k] for k in names],
        positions=np.arange(len(names))[::-1],
        widths=0.6,
        patch_artist=True,
        showfliers=True,
        medianprops={"color": "black"},
        **_horizontal(),
    )
    for patch, name in zip(box["boxes"], names, strict=True):
        patch.set_facecolor(colors[name])
        patch.set_alpha(0.4)
    bottom.set_yticks(np.arange(len(names))[::-1], names, fontsize=9)
    bottom.set_xlim(lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo))
    bottom.set_xlabel(xlabel)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    save_figure(fig, path)


def _iqr(v: np.ndarray) -> float:
    return float(np.quantile(v, 0.75) - np.quantile(v, 0.25))


def far_out_fence(v: np.ndarray) -> float:
    """Tukey's far-out fence Q3 + 3 IQR: instances above it failed to learn (e.g. a stuck init)."""
    return float(np.quantile(v, 0.75) + 3.0 * _iqr(v))


def _horizontal() -> dict[str, Any]:
    import matplotlib

    new = tuple(int(v) for v in matplotlib.__version__.split(".")[:2]) >= (3, 10)
    return {"orientation": "horizontal"} if new else {"vert": False}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    s = settings_for(args)
    say = (lambda *a: None) if args.quiet else print
    t_start = time.perf_counter()
    out = args.out

    pop = jrobust.data.calorimeter(s["events"], args.dataset, seed=args.seed)
    if args.model in (3, 4):
        total = pop.x.sum(axis=(1, 2, 3), keepdims=True)  # as examples/position.py: the shape
        import dataclasses

        pop = dataclasses.replace(pop, x=pop.x / np.maximum(total, 1e-3))
    config = jrobust.zoo.paper_config(args.model, epochs=s["epochs"], train_size=s["train_size"])
    jrobust.train.check_compatible(config, pop)
    say(f"data: {pop}")
    say(
        f"model: {config.describe()}, {s['train_size']} samples x {s['epochs']} epochs, "
        f"{s['instances']} instances per variant"
    )
    lanes = LaneTrainer(config, pop, args.seed, s["stack"])
    seconds: dict[str, float] = {}

    def evaluator(model_ids: np.ndarray, instances: np.ndarray) -> np.ndarray:
        """The race machinery's hook: 'models' are the three variants, instances are k."""
        losses = np.empty(len(model_ids))
        for v, name in enumerate(VARIANTS):
            sel = np.flatnonzero(model_ids == v)
            if sel.size:
                t0 = time.perf_counter()
                losses[sel] = lanes.variant(name, np.asarray(instances)[sel])
                seconds[name] = time.perf_counter() - t0
                say(f"  {name}: {sel.size} instances in {seconds[name]:.0f} s")
        return losses

    result = jrobust.exhaustive(
        len(VARIANTS),
        evaluator=evaluator,
        instances=s["instances"],
        statistic="std",
        rank_by="mean",
        seed=args.seed,
    )
    result.models["name"] = list(VARIANTS)
    samples = {name: result.losses(v) for v, name in enumerate(VARIANTS)}

    fence = far_out_fence(np.concatenate([v[np.isfinite(v)] for v in samples.values()]))
    rows = []
    for name, v in samples.items():
        f = v[np.isfinite(v)]
        rows.append(
            dict(
                variant=name,
                instances=v.size,
                failed=int(v.size - f.size),
                far_out=int((f > fence).sum()),
                mean=f.mean(),
                median=np.median(f),
                std=f.std(ddof=1),
                iqr=_iqr(f),
                pd=np.quantile(f, 0.9) - np.quantile(f, 0.1),
                min=f.min(),
                max=f.max(),
            )
        )
    table = pd.DataFrame(rows)
    fin = [v[np.isfinite(v)] for v in samples.values()]
    levene = scipy.stats.levene(*fin, center="median")
    fligner = scipy.stats.fligner(*fin)  # rank-based: insensitive to a few far-out instances
    # if init and sampling noise were independent and additive, var(both) = var(init) + var(sample);
    # robust variances (IQR / 1.349)^2 are not dominated by a stuck instance
    var = {r["variant"]: r["std"] ** 2 for r in rows}
    rvar = {r["variant"]: (r["iqr"] / 1.349) ** 2 for r in rows}
    additive = var["init only"] + var["sample only"]
    radditive = rvar["init only"] + rvar["sample only"]

    metric = "RMSE(E)/E" if args.model in (1, 2) else "RMSE(x), cm"
    command = "python examples/init_vs_sampling.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    conf = {
        "jrobust": {
            "version": jrobust.__version__,
            "example": command.strip(),
            "note": "models 0, 1, 2 are the variants init only, sample only, both",
        },
        "data": {"source": f"calo-{args.dataset.lower()}", "events": s["events"]},
        "race": {
            "statistic": "std",
            "rank_by": "mean",
            "rule": "halving",
            "warmup": s["instances"],
            "max_instances": s["instances"],
            "seed": args.seed,
        },
    }
    jrobust.save_run(result, out, conf, info={"data": repr(pop), "command": command.strip()})
    plot_three(
        samples,
        out / f"{NAME}.png",
        f"paper model {args.model}: {s['instances']} instances per variant, "
        f"{s['train_size']} samples x {s['epochs']} epochs (data set {args.dataset})",
        f"instance test loss {metric}",
    )
    measured = dict(
        example=NAME,
        mode=s["mode"],
        settings=s,
        data=repr(pop),
        model=config.describe(),
        variants=rows,
        seconds=seconds,
        far_out_fence=fence,
        levene=dict(statistic=float(levene.statistic), pvalue=float(levene.pvalue)),
        fligner=dict(statistic=float(fligner.statistic), pvalue=float(fligner.pvalue)),
        variance_both=var["both"],
        variance_init_plus_sample=additive,
        robust_variance_both=rvar["both"],
        robust_variance_init_plus_sample=radditive,
        wall_seconds=time.perf_counter() - t_start,
    )
    (out / "example.json").write_text(json.dumps(measured, indent=2, default=plain) + "\n")
    lines = [
        f"# Initialisation against sampling noise ({s['mode']} settings)",
        "",
        f"Data: {pop!r}; paper model {args.model} ({config.describe()}), "
        f"{s['train_size']} samples x {s['epochs']} epochs per instance.",
        "",
        "| variant | n | far out | mean | median | std | IQR | PD | min | max |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.variant} | {r.instances} | {r.far_out} | {r.mean:.4g} | {r.median:.4g} | "
            f"{r.std:.2g} | {r.iqr:.2g} | {r.pd:.2g} | {r.min:.4g} | {r.max:.4g} |"
        )
    lines += [
        "",
        f"Far out: above Q3 + 3 IQR of all instances ({fence:.4g}). Tests of equal spreads: "
        f"Levene (median-centred) W = {levene.statistic:.3g}, p = {levene.pvalue:.3g}; "
        f"Fligner-Killeen X2 = {fligner.statistic:.3g}, p = {fligner.pvalue:.3g}. "
        f"Additivity: var(both) = {var['both']:.3g} against var(init only) + var(sample only) "
        f"= {additive:.3g}; with robust variances (IQR / 1.349)^2: {rvar['both']:.3g} against "
        f"{radditive:.3g}.",
        "",
        f"![three distributions]({NAME}.png)",
        "",
    ]
    (out / "example.md").write_text("\n".join(lines))
    say(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    say(
        f"Levene p={levene.pvalue:.3g}, Fligner p={fligner.pvalue:.3g}; robust var(both)="
        f"{rvar['both']:.3g}, var(init)+var(sample)={radditive:.3g}"
    )
    print(f"{NAME}: run folder {out} ({measured['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
