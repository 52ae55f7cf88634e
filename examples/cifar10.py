"""CIFAR-10: race 36 training setups of a ResNet-18 on 10k / 20k / 30k-image subsets (TFDS).

The authors' CIFAR-10 extension (CHEP 2026 talk "Robust by Design"): a ResNet-18 tuned for
CIFAR-10 (SGD with Nesterov momentum 0.9, one-cycle schedule, random flips and 4-pixel crops),
36 variations of batch size {128, 256, 1024} x peak learning rate {0.1, 0.12, 0.15, 0.2} x L2
{1e-5, 1e-4, 1e-3}, instances trained on subsets of 10k, 20k and 30k training images, a Welch
test (alpha 0.05, warm-up 2) against the best model's instance losses. Their example winner on
30k samples: batch 128, peak lr 0.12, L2 1e-3: mean validation accuracy 0.9145 over 20
instances (std about 0.0026).

The data come from TensorFlow Datasets, **prepared beforehand** (jrobust never downloads):

    # on a machine with internet access
    pip install tensorflow tensorflow-datasets
    tfds build cifar10 --data_dir=/data/tfds --file_format=array_record
    # then, where the data is (a GPU host):
    python examples/cifar10.py --data-dir /data/tfds           # 10k subsets, 15 epochs, <= 10 inst.
    python examples/cifar10.py --data-dir /data/tfds --full    # 10k/20k/30k, 30 epochs, <= 20 inst.
    python examples/cifar10.py --smoke                         # seconds, on a tiny local stand-in

The population is TFDS's train+test (60,000 images), with a fixed 10,000-image test split drawn
by the seed (the talk's 50k/10k train/validation), images standardised per channel on the pool.
One race per subset size, each in its own run folder (``train_10000/`` ...), plus
cifar10_winners.png (the winners' instance accuracies per subset size) and example.json.

``--smoke`` exercises the same code path on a tiny TFDS-format stand-in named "cifar10" that it
writes itself (96 random-pattern 16x16 images, prepared by TFDS in array_record format) with a
tiny ResNet (4 filters, one stage of one block): it checks the plumbing, not CIFAR-10. Without the data (and
without ``--smoke``) the script stops at once and says how to prepare it.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

NAME = "cifar10"
TALK = dict(
    batch_size=[128, 256, 1024], learning_rate=[0.1, 0.12, 0.15, 0.2], l2=[1e-5, 1e-4, 1e-3]
)

MODES: dict[str, dict[str, Any]] = {
    "smoke": dict(
        subsets=[48],
        epochs=1,
        max_instances=3,
        warmup=2,
        test_size=24,
        choices=dict(batch_size=[16], learning_rate=[0.1, 0.2], l2=[1e-4, 1e-3]),
        arch=dict(filters=4, stages=[1]),
    ),
    "default": dict(
        subsets=[10_000],
        epochs=15,
        max_instances=10,
        warmup=2,
        test_size=10_000,
        choices=TALK,
        arch={},
    ),
    "full": dict(
        subsets=[10_000, 20_000, 30_000],
        epochs=30,
        max_instances=20,
        warmup=2,
        test_size=10_000,
        choices=TALK,
        arch={},
    ),
}
RACE = dict(statistic="mean", rule="welch", alpha=0.05)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="examples/cifar10.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--smoke", action="store_true", help="tiny local stand-in data and a tiny ResNet (seconds)"
    )
    size.add_argument("--full", action="store_true", help="the talk's scale: 10k/20k/30k subsets")
    p.add_argument(
        "--data-dir",
        type=Path,
        help="the TFDS data folder holding a prepared cifar10 (default: $TFDS_DATA_DIR "
        "or ~/tensorflow_datasets)",
    )
    p.add_argument("--out", type=Path, default=Path("runs/examples") / NAME, help="output folder")
    p.add_argument(
        "--subsets",
        type=lambda t: [int(v) for v in t.split(",")],
        help="comma-separated training-subset sizes",
    )
    p.add_argument("--epochs", type=int, help="epochs per instance")
    p.add_argument("--max-instances", type=int, help="instances per model at most")
    p.add_argument("--seed", type=int, default=0, help="root seed")
    p.add_argument("-q", "--quiet", action="store_true", help="print the final lines only")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------ data
def prepare_tiny_cifar10(
    data_dir: Path, n_train: int = 64, n_test: int = 32, size: int = 16, seed: int = 0
) -> Path:
    """Write a tiny TFDS data set named "cifar10" (features id, image, label as the real one) in
    array_record format under ``data_dir``; each class is a noisy colour pattern."""
    try:
        import tensorflow_datasets as tfds
        from PIL import Image
    except ImportError as err:
        raise ImportError(
            f"--smoke writes a TFDS data set: pip install 'jrobust[tfds]' [{err}]"
        ) from None
    tfds.disable_progress_bar()
    rng = np.random.default_rng(seed)
    patterns = rng.integers(0, 256, (10, size, size, 3))

    class TinyCifar10(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        name = "cifar10"
        VERSION = tfds.core.Version("3.0.2")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict(
                    {
                        "id": tfds.features.Text(),
                        "image": tfds.features.Image(shape=(size, size, 3)),
                        "label": tfds.features.ClassLabel(num_classes=10),
                    }
                ),
            )

        def _split_generators(self, dl_manager):
            return {
                "train": self._generate_examples(n_train, "train"),
                "test": self._generate_examples(n_test, "test"),
            }

        def _generate_examples(self, n: int, split: str):
            for i in range(n):
                label = int(rng.integers(0, 10))
                noise = rng.normal(0.0, 40.0, (size, size, 3))
                image = np.clip(patterns[label] + noise, 0, 255).astype(np.uint8)
                png = io.BytesIO()  # encoded with Pillow (TFDS would need TensorFlow)
                Image.fromarray(image).save(png, format="PNG")
                yield (
                    f"{split}_{i}",
                    {"id": f"{split}_{i}", "image": png.getvalue(), "label": label},
                )

    TinyCifar10(data_dir=str(data_dir), file_format="array_record").download_and_prepare()
    return data_dir


def load_population(data_dir: Path | None, test_size: int, seed: int):
    """CIFAR-10 train+test from a prepared TFDS folder, standardised per channel on the pool."""
    import jrobust

    pop = jrobust.data.tfds(
        "cifar10", data_dir=data_dir, split="train+test", test_size=test_size, val_size=0, seed=seed
    )
    return jrobust.data.standardize(pop)


# ------------------------------------------------------------------------------------ races
def space_tables(s: dict[str, Any], subset: int) -> list[dict[str, Any]]:
    base = {"model": "resnet18", "epochs": s["epochs"], "train_size": subset, **s["arch"]}
    return [{"base": base, "choices": {k: list(v) for k, v in s["choices"].items()}}]


def plot_winners(accuracies: dict[int, np.ndarray], names: dict[int, str], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from jrobust.plots import save_figure

    fig = Figure(figsize=(8.0, 1.6 + 0.9 * len(accuracies)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    sizes = sorted(accuracies)
    pos = np.arange(len(sizes))[::-1]
    data = [accuracies[k] for k in sizes]
    import matplotlib

    new = tuple(int(v) for v in matplotlib.__version__.split(".")[:2]) >= (3, 10)
    ax.boxplot(
        data,
        positions=pos,
        widths=0.55,
        showfliers=False,
        **({"orientation": "horizontal"} if new else {"vert": False}),
    )
    rng = np.random.default_rng(0)
    for p, d in zip(pos, data, strict=True):
        ax.scatter(d, p + rng.uniform(-0.2, 0.2, d.size), s=12, color="#d62728", zorder=3)
    ax.set_yticks(
        pos,
        [f"{k} images\n{names[k]}\nmean {np.mean(accuracies[k]):.4f}" for k in sizes],
        fontsize=8,
    )
    ax.set_xlabel("instance test accuracy of the winner")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("CIFAR-10 ResNet-18 races: the winner of each training-subset size", fontsize=10)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = "smoke" if args.smoke else "full" if args.full else "default"
    s = dict(MODES[mode], mode=mode)
    for key in ("subsets", "epochs", "max_instances"):
        if getattr(args, key) is not None:
            s[key] = getattr(args, key)
    say = (lambda *a: None) if args.quiet else print
    t_start = time.perf_counter()

    tmp = None
    data_dir = args.data_dir
    try:
        if args.smoke:
            tmp = Path(tempfile.mkdtemp(prefix="jrobust-tiny-cifar10-"))
            data_dir = prepare_tiny_cifar10(tmp)
        try:  # fails at once, before anything is compiled, when the data is not prepared
            pop = load_population(data_dir, s["test_size"], args.seed)
        except (FileNotFoundError, ImportError, ValueError) as err:
            print(f"{NAME}: cannot load CIFAR-10: {err}", file=sys.stderr)
            print(
                f"{NAME}: run with --smoke to check the code path on a tiny stand-in",
                file=sys.stderr,
            )
            return 2
        command = "python examples/cifar10.py " + " ".join(sys.argv[1:] if argv is None else argv)
        return run_races(args, s, pop, say, t_start, command.strip())
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def run_races(args, s: dict[str, Any], pop, say, t_start: float, command: str) -> int:
    import jrobust
    from jrobust.space import build_space

    say(f"data: {pop}")
    too_big = [k for k in s["subsets"] if k > pop.pool_size]
    if too_big:
        print(
            f"{NAME}: subsets {too_big} exceed the pool of {pop.pool_size} images", file=sys.stderr
        )
        return 2
    summary, accuracies, names = [], {}, {}
    for subset in s["subsets"]:
        tables = space_tables(s, subset)
        space = build_space(tables)
        say(f"subset {subset}: {space}")

        def progress(info: dict[str, Any]) -> None:
            say(
                f"  round {info['round']}: {info['survivors']} of {info['models']} models left, "
                f"{info['trained']} instances in {info['seconds']:.0f} s "
                f"(+{info['compile_seconds']:.0f} s compiling)"
            )

        race = dict(RACE, warmup=s["warmup"], max_instances=s["max_instances"], seed=args.seed)
        result = jrobust.race(space, pop, **race, rank_by="mean", progress=progress)
        folder = args.out / f"train_{subset}"
        config = {
            "jrobust": {"version": jrobust.__version__, "example": command.strip()},
            "data": {
                "source": "tfds:cifar10",
                "data_dir": str(Path(pop.meta["tfds"]["path"]).parents[1]),
            },
            "race": {**race, "rank_by": "mean"},
            "space": tables,
        }
        if s["mode"] == "smoke":
            config["jrobust"]["note"] = "a tiny local stand-in for CIFAR-10 (deleted afterwards)"
        jrobust.save_run(result, folder, config, info={"data": repr(pop), "command": command})
        acc = 1.0 - result.losses(result.winner_id)
        accuracies[subset] = acc
        names[subset] = str(result.models.name[result.winner_id])
        summary.append(
            dict(
                train_size=subset,
                winner_id=result.winner_id,
                winner=names[subset],
                instances=int(acc.size),
                mean_accuracy=float(np.mean(acc)),
                std_accuracy=float(np.std(acc, ddof=1)) if acc.size > 1 else 0.0,
                n_trainings=result.n_trainings,
                exhaustive=len(space) * s["max_instances"],
                rounds=len(result.history),
                stop=result.timing["stop_reason"],
                seconds=result.timing["wall_seconds"],
                folder=str(folder),
            )
        )
        say(
            f"  winner {names[subset]!r}: accuracy {summary[-1]['mean_accuracy']:.4f} +- "
            f"{summary[-1]['std_accuracy']:.4f} over {acc.size} instances, "
            f"{result.n_trainings} trainings"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    plot_winners(accuracies, names, args.out / f"{NAME}_winners.png")
    measured = dict(
        example=NAME,
        mode=s["mode"],
        settings=s,
        data=repr(pop),
        races=summary,
        wall_seconds=time.perf_counter() - t_start,
    )
    (args.out / "example.json").write_text(json.dumps(measured, indent=2, default=str) + "\n")
    print(
        f"{NAME}: {len(summary)} race(s), folders under {args.out} "
        f"({measured['wall_seconds']:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
