"""Ground-truth grids for the selection benchmarks: every model of a space trained for ``G``
instances once, stored as a small (models x G) loss table in ``benchmarks/data/``.

Training the grids is the expensive part of judging a selection method; the benchmarks
(``benchmarks/selection.py``, ``benchmarks/vs_optuna.py``) then only look up entries of these
tables, so a rerun after the race changes costs seconds. Instance ``i`` of every model is
``jrobust.train_instances(config, population, [i], seed=0)``: training subset ``i`` of the
population and an initialisation from ``(0, i, model)``, the same pairing (common random
numbers) a race with seed 0 uses. A failed instance is stored as ``+inf``.

Spaces (``GRIDS``):

* ``digits``: 64 MLPs on scikit-learn's digits (1,797 images, 400 test images): hidden layers
  (16), (32), (64), (32, 16) x learning rate {1e-3, 3e-3, 1e-2, 3e-2} x L2 {0, 1e-4, 1e-3,
  1e-2}; Adam, batch 50, 600 training images x 6 epochs; instance loss = test cross-entropy.
* ``calo``: 32 small CNNs on the synthetic calorimeter (data set B, 12,000 events), energy
  target: one 3x3 convolution (8) or two (8, 16, global pool) x with or without the total
  energy as a side feature x learning rate {3e-4, 1e-3, 3e-3, 1e-2} x weight decay {1e-3,
  1e-1}; AdamW, batch 64, 4,000 events x 3 epochs; instance loss = test RMSE(E)/E.
* ``cct-10k``, ``cct-20k``, ``cct-30k`` (``load_cct``): not trained here; the authors'
  published table of 192 CIFAR-10 CCT configurations x 20 instances
  (``tests/data/cct_instances.csv``), split into its three spaces of 64 configurations.

The grid of a space is written once and resumed model by model if interrupted:

    nice -n 10 python benchmarks/selection_grids.py --data digits --instances 60
    nice -n 10 python benchmarks/selection_grids.py --data calo --instances 60
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import jrobust
from jrobust import zoo

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / "data"
CCT_CSV = HERE.parent / "tests" / "data" / "cct_instances.csv"

# ---------------------------------------------------------------------------------- the spaces


def digits_space(train_size: int = 600, epochs: int = 6) -> jrobust.SearchSpace:
    """64 MLPs in 4 cohorts: hidden layers x learning rate x L2, Adam, batch 50."""
    base = zoo.mlp_config(
        hidden=(32,),
        outputs=10,
        loss="cross_entropy",
        metric="cross_entropy",
        optimizer="adam",
        train_size=train_size,
        batch_size=50,
        epochs=epochs,
    )
    return jrobust.SearchSpace(
        base,
        hidden=[(16,), (32,), (64,), (32, 16)],
        learning_rate=[1e-3, 3e-3, 1e-2, 3e-2],
        l2=[0.0, 1e-4, 1e-3, 1e-2],
    )


def digits_population() -> jrobust.Population:
    """scikit-learn's bundled digits, pixels scaled to [0, 1], 400 test images."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return jrobust.Population(
        d.images.reshape(len(d.images), -1) / 16.0,
        d.target,
        num_classes=10,
        test_size=400,
        seed=0,
        name="digits",
    )


def calo_space(train_size: int = 4000, epochs: int = 3) -> jrobust.SearchSpace:
    """32 small CNNs in 4 cohorts on the energy target (relative RMSE): one or two 3x3
    convolutions, with or without the total cluster energy as a side feature (the paper's
    inductive bias of model 2), x 4 learning rates x 2 weight decays; AdamW, batch 64."""
    base = zoo.cnn_config(
        conv=(8,),
        pool=(2,),
        dense=(16,),
        target="energy",
        loss="relative_mse",
        metric="relative_rmse",
        optimizer="adamw",
        batch_size=64,
        epochs=epochs,
        train_size=train_size,
    )
    models = []
    for conv, pool in (((8,), (2,)), ((8, 16), (2, "global"))):
        for side in ((), ("total_energy",)):
            arch = dataclasses.replace(base.architecture, conv=conv, pool=pool, side_at=0)
            for lr in (3e-4, 1e-3, 3e-3, 1e-2):
                for wd in (1e-3, 1e-1):
                    models.append(
                        dataclasses.replace(
                            base,
                            architecture=arch,
                            side_features=side,
                            learning_rate=lr,
                            weight_decay=wd,
                        )
                    )
    return jrobust.SearchSpace.from_models(models)


def calo_population(n_events: int = 12_000) -> jrobust.Population:
    """The synthetic calorimeter, data set B."""
    return jrobust.data.calorimeter(n_events=n_events, dataset="B")


SPACE_TEXT = {
    "digits": "64 MLPs on scikit-learn's digits (1,797 images, 400 test images): hidden layers "
    "(16), (32), (64), (32, 16) x learning rate {1e-3, 3e-3, 1e-2, 3e-2} x L2 {0, 1e-4, 1e-3, "
    "1e-2}; Adam, batch 50, 600 training images x 6 epochs",
    "calo": "32 small CNNs on the synthetic calorimeter (data set B, 12,000 events), energy "
    "target: one 3x3 convolution (8) or two (8, 16, global pool) x with or without the total "
    "energy as a side feature x learning rate {3e-4, 1e-3, 3e-3, 1e-2} x weight decay {1e-3, "
    "1e-1}; AdamW, batch 64, 4,000 events x 3 epochs",
}

#: name -> (space, population, what the instance loss is)
GRIDS: dict[str, tuple[Callable[[], jrobust.SearchSpace], Callable[[], Any], str]] = {
    "digits": (digits_space, digits_population, "test cross-entropy"),
    "calo": (calo_space, calo_population, "test RMSE(E)/E"),
}


def grid_path(name: str) -> Path:
    return DATA_DIR / f"grid_{name}.npz"


# ---------------------------------------------------------------------------------- building


def build(name: str, instances: int, log: Callable[[str], None] = print) -> Path:
    """Train every model of space ``name`` for instances ``0..instances-1`` and write the grid;
    a partial file (``.partial.npz``) keeps the models done so far and is resumed."""
    make_space, make_pop, metric = GRIDS[name]
    space, pop = make_space(), make_pop()
    out = grid_path(name)
    partial = out.with_suffix(".partial.npz")
    losses = np.full((len(space), instances), np.nan)
    seconds = 0.0
    if partial.is_file():
        with np.load(partial) as f:
            if f["losses"].shape == losses.shape:
                losses, seconds = f["losses"].copy(), float(f["seconds"])
    command = (
        f"nice -n 10 python benchmarks/selection_grids.py --data {name} --instances {instances}"
    )
    log(f"# {name}: {len(space)} models x {instances} instances on {pop}")
    for m, config in enumerate(space.models):
        if np.all(~np.isnan(losses[m])):
            continue
        t0 = time.perf_counter()
        frame = jrobust.train_instances(config, pop, range(instances), seed=0, max_stack=20)
        frame = frame.sort_values("instance")
        losses[m] = np.where(frame.status.to_numpy() == "ok", frame.loss.to_numpy(), np.inf)
        seconds += time.perf_counter() - t0
        DATA_DIR.mkdir(exist_ok=True)
        np.savez(partial, losses=losses, seconds=seconds)
        log(
            f"model {m:3d} {space.names()[m]:45s} mean {np.mean(losses[m]):.4f} "
            f"({time.perf_counter() - t0:.0f} s, {seconds / 60:.1f} min in all)"
        )
    frame = space.to_frame()
    meta = dict(
        name=name,
        loss=metric,
        instances=instances,
        population=repr(pop),
        space=SPACE_TEXT[name],
        models=json.loads(frame.drop(columns=["cohort"]).to_json(orient="records")),
        command=command,
        seed=0,
        train_seconds=round(seconds, 1),
        date=datetime.date.today().isoformat(),
        jrobust=jrobust.__version__,
        python=platform.python_version(),
        machine=f"{platform.machine()} CPU",
    )
    np.savez_compressed(out, losses=losses, meta=np.array(json.dumps(meta)))
    partial.unlink(missing_ok=True)
    log(f"# wrote {out} ({seconds / 60:.1f} min of training)")
    return out


# ---------------------------------------------------------------------------------- loading


@dataclasses.dataclass(frozen=True)
class Grid:
    """A (models x instances) table of instance losses (lower is better) and what it is.

    Attributes:
      name: the space's name.
      losses: ``(M, G)`` float array; ``+inf`` marks a failed instance.
      names: the ``M`` model names.
      meta: the description stored with the grid (space, loss, command, ...).
    """

    name: str
    losses: np.ndarray
    names: list[str]
    meta: dict[str, Any]

    @property
    def n_models(self) -> int:
        return self.losses.shape[0]

    @property
    def n_instances(self) -> int:
        return self.losses.shape[1]


def load_grid(name: str) -> Grid:
    """A trained grid (``digits``, ``calo``) or a CCT space (``cct-10k``, ``cct-20k``,
    ``cct-30k``)."""
    if name.startswith("cct-"):
        grids = {g.name: g for g in load_cct()}
        if name not in grids:
            raise ValueError(f"unknown CCT space {name!r}; use one of {', '.join(grids)}")
        return grids[name]
    path = grid_path(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"no grid {path}; make it once with: nice -n 10 python benchmarks/selection_grids.py "
            f"--data {name} --instances 60"
        )
    with np.load(path) as f:
        losses, meta = f["losses"], json.loads(str(f["meta"]))
    return Grid(name, losses, [m["name"] for m in meta["models"]], meta)


#: The CCT table's varied hyperparameters: a 2^6 factorial within each training-subset size.
CCT_FACTORS = ("batch_size", "peak_lr", "warmup_ep", "label_smoothing", "drop_path_rate", "depth")


def load_cct(loss: str = "error") -> list[Grid]:
    """The authors' CCT table as three grids of 64 configurations x 20 instances.

    The 192 rows are three spaces, one per training-subset size (``dt_len`` 10,000, 20,000 and
    30,000 CIFAR-10 images), each the full 2^6 factorial of ``CCT_FACTORS`` (batch size 64/128,
    peak learning rate 5e-4/1e-3, warm-up 5/10 epochs, label smoothing 0.05/0.1, drop-path
    0.05/0.1, depth 6/7; the other columns are constant); ``tests/test_benchmarks_selection.py``
    checks this.

    Args:
      loss: ``"error"`` (1 - validation accuracy, default) or ``"loss"`` (validation
        cross-entropy).

    Returns:
      Three ``Grid``: ``cct-10k``, ``cct-20k``, ``cct-30k``.
    """
    if loss not in ("error", "loss"):
        raise ValueError(f"loss must be 'error' or 'loss', got {loss!r}")
    frame = pd.read_csv(CCT_CSV)
    grids = []
    for size, part in frame.groupby("dt_len", sort=True):
        part = part.sort_values(list(CCT_FACTORS))
        if loss == "error":
            table = 1.0 - part[[f"acc_{i}" for i in range(1, 21)]].to_numpy(np.float64)
        else:
            table = part[[f"loss_{i}" for i in range(1, 21)]].to_numpy(np.float64)
        names = [
            f"bs={r.batch_size} lr={r.peak_lr:g} warmup={r.warmup_ep} ls={r.label_smoothing:g} "
            f"dp={r.drop_path_rate:g} depth={r.depth}"
            for r in part.itertuples()
        ]
        name = f"cct-{size // 1000}k"
        meta = dict(
            name=name,
            loss="1 - validation accuracy" if loss == "error" else "validation cross-entropy",
            instances=20,
            space=f"64 CCT configurations on {size:,} CIFAR-10 training images (the authors' "
            "published instances): batch size {64, 128} x peak learning rate {5e-4, 1e-3} x "
            "warm-up {5, 10} epochs x label smoothing {0.05, 0.1} x drop-path {0.05, 0.1} x "
            "depth {6, 7}; AdamW, GELU, 128 filters, 4 heads",
            models=[dict(name=n, row=int(r)) for n, r in zip(names, part.index, strict=True)],
            command="(published table: tests/data/cct_instances.csv)",
        )
        grids.append(Grid(name, table, names, meta))
    return grids


#: Every space the benchmarks judge on.
SPACES = ("digits", "calo", "cct-10k", "cct-20k", "cct-30k")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", choices=sorted(GRIDS), required=True)
    p.add_argument("--instances", type=int, default=60, help="instances per model (columns)")
    args = p.parse_args(argv)
    if args.instances < 1:
        print("--instances must be a positive integer", file=sys.stderr)
        return 2
    build(args.data, args.instances)
    return 0


if __name__ == "__main__":
    sys.exit(main())
