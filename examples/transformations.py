"""Robustness to transformations of the data: rotation by augmentation, scale by Riesz networks.

The method's source asks which minimal inductive biases make a model robust to a transformation
of its inputs: translation comes with a CNN's architecture, rotation by augmenting the training
data, scale with the architecture of a Riesz network (Barisin, Schladitz, Redenbach, J. Math.
Imaging Vis. 2024). This study measures it with jrobust, on real data and offline:
scikit-learn's 8x8 handwritten digits (or MNIST through TFDS with a prepared ``--data-dir``).

Every instance is evaluated, inside the compiled trainer and after training, on its test split
rotated by each angle and scaled by each factor (``jrobust.data.with_transforms``): the ledger
has one error rate per (instance, transformation, parameter). The study

1. races four families, each at a few learning rates: a CNN, the same CNN trained with random
   rotations (``augment="rotate"``), an MLP and a Riesz network (``zoo.riesz_config``), with
   ``over="transforms"``: a model is judged by its worst transformed test set (the statistic
   ``max`` over the angles and factors of the mean over its instances), so the race selects on
   "robust to rotations and scales" as it selects on "robust to initialisation";
2. trains ``compare`` instances of each family's best model (an exhaustive grid, the same
   transformed test sets), and measures, per instance, the spread of the error across angles
   (std over the angles) and the error at each scale factor relative to its error at scale 1;
3. writes the race's run folder (summary.md, report.html, transforms.png, ...), the study's
   figure ``transformations.png`` (error against the angle and the factor, median and 10-90 %
   band over instances, one line per family), ``example.json`` and ``example.md``.

    python examples/transformations.py            # default: about 3.5 minutes on 2 CPU cores
    python examples/transformations.py --smoke    # seconds: the code path only
    python examples/transformations.py --full     # more epochs, instances and angles
    python examples/transformations.py --data digits16   # digits in a 16x16 frame: ~15 minutes
    python examples/transformations.py --data tfds:mnist --data-dir ~/tensorflow_datasets

What the seed claims and what was measured: docs/paper.md, "Robustness to transformations".
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

import jrobust
from jrobust.data import with_transforms

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import plain, write_example_md  # noqa: E402

NAME = "transformations"
FAMILIES = ("cnn", "cnn+rotate", "mlp", "riesz")

MODES: dict[str, dict[str, Any]] = {
    "smoke": dict(
        train_size=256,
        epochs=1,
        learning_rates=[3e-3],
        angles=[0, 45, 90],
        factors=[0.75, 1.0, 1.5],
        warmup=2,
        max_instances=2,
        compare=2,
    ),
    "default": dict(
        train_size=1000,
        epochs=20,
        learning_rates=[3e-3, 1e-2],
        angles=[0, 15, 30, 45, 60, 90],
        factors=[0.6, 0.8, 1.0, 1.25, 1.5],
        warmup=3,
        max_instances=6,
        compare=10,
    ),
    "full": dict(
        train_size=1000,
        epochs=40,
        learning_rates=[1e-3, 3e-3, 1e-2],
        angles=[0, 10, 20, 30, 45, 60, 75, 90, 135, 180],
        factors=[0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.12, 1.25, 1.5, 1.75, 2.0],
        warmup=5,
        max_instances=20,
        compare=30,
    ),
}
RACE = dict(statistic="max", rule="halving", over="transforms")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="examples/transformations.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="tiny settings (seconds): the code path")
    size.add_argument("--full", action="store_true", help="more epochs, instances and angles")
    p.add_argument(
        "--data",
        default="digits",
        help="digits (default, 8x8), digits16 (the digits enlarged to 12x12 in a 16x16 frame) or "
        "tfds:mnist",
    )
    p.add_argument("--data-dir", help="folder of prepared TFDS data sets (for tfds:mnist)")
    p.add_argument("--out", type=Path, default=Path("runs/examples") / NAME, help="run folder")
    p.add_argument("--epochs", type=int, help="epochs per instance (default: by mode)")
    p.add_argument("--compare", type=int, help="instances of each family's best model")
    p.add_argument("--seed", type=int, default=0, help="root seed (data subsets, inits)")
    p.add_argument("-q", "--quiet", action="store_true", help="print the final lines only")
    return p.parse_args(argv)


def settings_for(args: argparse.Namespace) -> dict[str, Any]:
    mode = "smoke" if args.smoke else "full" if args.full else "default"
    s = dict(MODES[mode], mode=mode)
    for key in ("epochs", "compare"):
        if getattr(args, key) is not None:
            s[key] = getattr(args, key)
    return s


def load_data(args: argparse.Namespace, seed: int) -> jrobust.Population:
    if args.data == "digits":
        return jrobust.data.digits(seed=seed)
    if args.data == "digits16":
        return digits16(seed)
    kwargs = {"data_dir": args.data_dir} if args.data_dir else {}
    return jrobust.data.load(args.data, **kwargs)


def digits16(seed: int) -> jrobust.Population:
    """The digits enlarged to 12x12 (bilinear) in a 16x16 frame: a 2-pixel margin, so that scaling
    by up to 1.33 keeps the whole digit in the frame and shrinking keeps more of its strokes."""
    import jax

    base = jrobust.data.digits(seed=seed)
    big = np.asarray(jax.image.resize(base.x, (len(base.x), 12, 12, 1), "linear"))
    x = np.pad(big, ((0, 0), (2, 2), (2, 2), (0, 0)))
    return jrobust.data.from_arrays(
        x,
        base.y,
        num_classes=10,
        test_size=0.2,
        val_size=0.1,
        seed=seed,
        name="digits16",
        target_names=("label",),
    )


# ------------------------------------------------------------------------------------ the space
def family_configs(family: str, s: dict[str, Any], pop: jrobust.Population) -> list:
    """The models of one family, one per learning rate; classification by error rate."""
    side = pop.input_shape[0]
    small = side <= 16  # digits: 8x8; MNIST: 28x28
    common = dict(
        outputs=pop.num_classes,
        loss="cross_entropy",
        metric="accuracy",
        optimizer="adamw",
        weight_decay=1e-4,
        batch_size=32,
        epochs=s["epochs"],
        train_size=s["train_size"],
    )
    cnn = dict(conv=(16, 32), pool=(2, "global") if small else (2, 2), dense=(64,))
    out = []
    for lr in s["learning_rates"]:
        if family == "cnn":
            out.append(jrobust.zoo.cnn_config(**cnn, **common, learning_rate=lr))
        elif family == "cnn+rotate":
            angle = float(max(s["angles"]))
            out.append(
                jrobust.zoo.cnn_config(
                    **cnn, **common, learning_rate=lr, augment="rotate", augment_range=angle
                )
            )
        elif family == "mlp":
            out.append(jrobust.zoo.mlp_config(hidden=(128, 64), **common, learning_rate=lr))
        elif family == "riesz":
            channels = (12, 16, 24) if small else (12, 16, 24, 32)
            out.append(jrobust.zoo.riesz_config(channels=channels, **common, learning_rate=lr))
        else:
            raise ValueError(f"unknown family {family!r}")
    return out


def make_space(s: dict[str, Any], pop: jrobust.Population):
    configs, families, names = [], [], []
    for family in FAMILIES:
        for config in family_configs(family, s, pop):
            configs.append(config)
            families.append(family)
            names.append(f"{family} lr={config.learning_rate:g}")
    return jrobust.SearchSpace.from_models(configs, names=names), families


# ------------------------------------------------------------------------------------ measures
def per_instance(result: jrobust.SelectionResult, model_id: int, name: str) -> pd.DataFrame:
    """Instances by parameter of one transform: the error of each instance at each parameter."""
    table = result.transform_losses(model_id)
    return table[name].sort_index(axis=1)


def measures(result, family_of: dict[int, str], s: dict[str, Any]) -> list[dict[str, Any]]:
    """Per family: the error at each angle and factor (median over instances), the spread of
    each instance's error across the angles, and its error at each factor over scale 1's."""
    rows = []
    for m, family in family_of.items():
        rot = per_instance(result, m, "rotation")
        sca = per_instance(result, m, "scale")
        base = result.losses(m)
        spread = rot.std(axis=1, ddof=0)  # per instance: std of the error across angles
        relative = sca.div(sca[1.0], axis=0)  # per instance: error at factor / error at 1
        far = [f for f in sca.columns if f != 1.0]
        rows.append(
            dict(
                family=family,
                model_id=int(m),
                name=str(result.models.name[m]),
                instances=int(len(rot)),
                error=float(np.median(base)),
                error_by_angle={f"{a:g}": float(v) for a, v in rot.median().items()},
                error_by_factor={f"{f:g}": float(v) for f, v in sca.median().items()},
                angle_spread_median=float(spread.median()),
                angle_spread_q10_q90=[float(spread.quantile(0.1)), float(spread.quantile(0.9))],
                worst_angle_error=float(rot.max(axis=1).median()),
                scale_ratio_by_factor={f"{f:g}": float(relative[f].median()) for f in far},
                scale_ratio_mean=float(relative[far].to_numpy().mean()),
                # per instance: error at factor - error at 1, averaged over the other factors
                scale_excess_mean=float(np.median(sca[far].sub(sca[1.0], axis=0).mean(axis=1))),
            )
        )
    return rows


def plot_study(result, family_of: dict[int, str], path: Path, title: str) -> None:
    """Error against the angle and the scale factor, one line per family."""
    from jrobust.plots import plot_transforms

    plot_transforms(result, models=list(family_of), title=title, path=path)


# ------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    s = settings_for(args)
    say = (lambda *a: None) if args.quiet else print
    t_start = time.perf_counter()
    phases: dict[str, float] = {}
    mark = [t_start]

    def lap(step: str) -> None:
        now = time.perf_counter()
        phases[step] = now - mark[0]
        mark[0] = now

    try:
        plain_pop = load_data(args, args.seed)
    except (FileNotFoundError, ValueError, ImportError) as err:
        print(f"examples/transformations.py: {err}", file=sys.stderr)
        return 2
    pop = with_transforms(plain_pop, rotation=s["angles"], scale=s["factors"])
    space, families = make_space(s, pop)
    say(f"data: {pop} with {len(pop.transforms)} transformed test sets {pop.transforms.pairs}")
    say(f"space: {space}")
    lap("data")

    def progress(info: dict[str, Any]) -> None:
        say(
            f"  round {info['round']}: {info['survivors']} of {info['models']} models left, "
            f"{info['trained']} instances in {info['seconds']:.0f} s "
            f"(+{info['compile_seconds']:.0f} s compiling)"
        )

    race_settings = dict(**RACE, warmup=s["warmup"], max_instances=s["max_instances"])
    result = jrobust.race(space, pop, **race_settings, seed=args.seed, progress=progress)
    say(
        f"race: winner {result.winner_id} {result.models.name[result.winner_id]!r} "
        f"({families[result.winner_id]}), {result.n_trainings} trainings in "
        f"{result.timing['wall_seconds']:.0f} s"
    )
    lap("race")

    # each family's best model by the race (the winners first, then the longest-lived)
    order = result.summary(top=None).model_id.tolist()
    best = {f: next(m for m in order if families[m] == f) for f in FAMILIES}
    finalists = jrobust.SearchSpace.from_models(
        [space.models[best[f]] for f in FAMILIES], names=[space.names()[best[f]] for f in FAMILIES]
    )
    grid = jrobust.exhaustive(finalists, pop, instances=s["compare"], seed=args.seed)
    family_of = dict(enumerate(FAMILIES))
    lap("compare")
    rows = measures(grid, family_of, s)
    by = {r["family"]: r for r in rows}

    out = args.out
    command = "python examples/transformations.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    config = {
        "jrobust": {"version": jrobust.__version__, "example": command.strip()},
        "data": {"source": args.data, "rotation": s["angles"], "scale": s["factors"]},
        "race": {**race_settings, "seed": args.seed},
    }
    jrobust.save_run(result, out, config, info={"data": repr(pop), "command": command.strip()})
    plot_study(
        grid,
        family_of,
        out / f"{NAME}.png",
        f"{plain_pop.name}: {s['train_size']} samples x {s['epochs']} epochs, "
        f"{s['compare']} instances per family",
    )
    lap("save")
    findings = dict(
        rotation_augmentation_narrows_angle_spread=bool(
            by["cnn+rotate"]["angle_spread_median"] < by["cnn"]["angle_spread_median"]
        ),
        angle_spread_ratio_rotate_over_cnn=by["cnn+rotate"]["angle_spread_median"]
        / max(by["cnn"]["angle_spread_median"], 1e-12),
        riesz_scale_ratio_mean=by["riesz"]["scale_ratio_mean"],
        cnn_scale_ratio_mean=by["cnn"]["scale_ratio_mean"],
        riesz_scale_excess=by["riesz"]["scale_excess_mean"],
        cnn_scale_excess=by["cnn"]["scale_excess_mean"],
        riesz_less_scale_sensitive_than_cnn=bool(
            by["riesz"]["scale_excess_mean"] < by["cnn"]["scale_excess_mean"]
        ),
    )
    measured = dict(
        example=NAME,
        mode=s["mode"],
        settings=s,
        data=repr(plain_pop),
        transforms=[list(p) for p in pop.transforms.pairs],
        race=dict(
            winner_id=result.winner_id,
            winner=str(result.models.name[result.winner_id]),
            winner_family=families[result.winner_id],
            n_models=len(result.models),
            n_trainings=result.n_trainings,
            timing=result.timing,
        ),
        families=rows,
        findings=findings,
        phases=phases,
        wall_seconds=time.perf_counter() - t_start,
    )
    (out / "example.json").write_text(json.dumps(measured, indent=2, default=plain) + "\n")
    write_markdown(out, measured, s)
    for r in rows:
        say(
            f"{r['family']:>10}: error {r['error']:.3f}; across angles: spread "
            f"{r['angle_spread_median']:.3f}, worst {r['worst_angle_error']:.3f}; error at the "
            f"other factors: +{r['scale_excess_mean']:.3f} ({r['scale_ratio_mean']:.1f}x)"
        )
    narrows = findings["rotation_augmentation_narrows_angle_spread"]
    print(
        f"{NAME}: rotation augmentation {'narrows' if narrows else 'does not narrow'} "
        f"the spread across angles ({findings['angle_spread_ratio_rotate_over_cnn']:.2f}x); "
        f"error added by scaling: Riesz +{findings['riesz_scale_excess']:.3f}, CNN "
        f"+{findings['cnn_scale_excess']:.3f}; run folder {out} "
        f"({measured['wall_seconds']:.0f} s)"
    )
    return 0


def write_markdown(out: Path, measured: dict, s: dict) -> None:
    rows = measured["families"]
    angles = list(rows[0]["error_by_angle"])
    factors = list(rows[0]["error_by_factor"])
    lines = [
        f"# Robustness to transformations ({s['mode']} settings)",
        "",
        f"Data: {measured['data']}; {s['train_size']} training samples x {s['epochs']} epochs "
        f"per instance; each family's best model by the race, {s['compare']} instances.",
        "",
        "Test error rate (median over instances) against the rotation angle (degrees):",
        "",
        "| family | model | " + " | ".join(angles) + " | spread across angles (median) |",
        "|---|---|" + "---|" * len(angles) + "---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['family']} | #{r['model_id']} {r['name']} | "
            + " | ".join(f"{r['error_by_angle'][a]:.3f}" for a in angles)
            + f" | {r['angle_spread_median']:.3f} |"
        )
    lines += [
        "",
        "Test error rate (median over instances) against the scale factor; per instance, the "
        "error the other factors add to the error at scale 1 (mean over those factors; median "
        "over instances), and the same as a ratio error(factor) / error(1):",
        "",
        "| family | " + " | ".join(factors) + " | added by scaling | ratio to scale 1 |",
        "|---|" + "---|" * len(factors) + "---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['family']} | "
            + " | ".join(f"{r['error_by_factor'][f]:.3f}" for f in factors)
            + f" | +{r['scale_excess_mean']:.3f} | {r['scale_ratio_mean']:.2f} |"
        )
    f = measured["findings"]
    lines += [
        "",
        f"- rotation augmentation "
        f"{'narrows' if f['rotation_augmentation_narrows_angle_spread'] else 'does not narrow'} "
        f"the spread of the error across angles: {f['angle_spread_ratio_rotate_over_cnn']:.2f}x "
        "the plain CNN's",
        f"- error added by scaling (the other factors against scale 1): Riesz "
        f"+{f['riesz_scale_excess']:.3f} ({f['riesz_scale_ratio_mean']:.1f}x), CNN "
        f"+{f['cnn_scale_excess']:.3f} ({f['cnn_scale_ratio_mean']:.1f}x)",
        f"- the race (over the transformed test sets, statistic max): winner "
        f"{measured['race']['winner']!r} of {measured['race']['n_models']} models, "
        f"{measured['race']['n_trainings']} trainings",
    ]
    write_example_md(out, lines, f"{NAME}.png", "error against angle and scale")


if __name__ == "__main__":
    raise SystemExit(main())
