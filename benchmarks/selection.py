"""Exhaustive search against the race on the same space: trainings, instance-steps, and where the
race's winner ranks in the exhaustive ranking, for the rules (halving, the unpaired Welch test and
the paired rules), with and without a fidelity schedule, for the statistics ``mean`` and ``std``;
and a fidelity study (how often the subsample race picks the full-size race's winner, at what
fraction of its instance-steps).

Every instance is trained once by the JAX trainer (``jrobust.engine.Engine``, the race's own, at
the fidelity sizes through ``Work.train_size``) and kept in a cache file keyed by
``(model, instance, train_size)``; every race then runs through a lookup evaluator over that cache,
so the many configurations and seeds cost only the instances they add. The exhaustive search is
every model x ``--instances`` instances at the models' own size, ranked by the statistic.

Seeds: the race's instance ``i`` of benchmark seed ``s`` is the cached instance ``perm_s[i]``
(``perm_s`` a fixed random permutation of the exhaustive grid's ``--instances`` columns, the
identity for seed 0 and for indices beyond the grid): each seed races the same models on the
instances in another order, and its full-size instances are entries of the exhaustive grid
(common random numbers, as a race and an exhaustive search with one root seed). Instance-steps
are counted from the ledger: ``epochs * (train_size // batch_size)`` per instance.

    python benchmarks/selection.py --data digits              # 64 MLPs on scikit-learn's digits
    python benchmarks/selection.py --data calo                # 32 small CNNs, calorimeter B
    python benchmarks/selection.py --data digits --seeds 10 --markdown RESULTS_selection.md
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import jrobust
from jrobust import zoo
from jrobust._cache import cache_dir, enable_compilation_cache
from jrobust.engine import Engine
from jrobust.state import Work
from jrobust.stats import get_statistic

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
    return jrobust.data.calorimeter(n_events=n_events, dataset="B")


DATA = {
    # name: (space, population, the fidelity schedule studied)
    "digits": (digits_space, digits_population, (150, 300, 600)),
    "calo": (calo_space, calo_population, (500, 1000, 4000)),
}


# ---------------------------------------------------------------------------------- the cache


class InstanceCache:
    """Instance losses of one space on one population, keyed by (model, instance, train_size),
    trained on demand by the race's own Engine and kept in an ``.npz`` file."""

    def __init__(self, space: jrobust.SearchSpace, population: jrobust.Population, path: Path):
        self.configs = list(space.models)
        self.population = population
        self.path = path
        self.table: dict[tuple[int, int, int], float] = {}
        self.trained = 0
        self.train_seconds = 0.0
        self._engine: Engine | None = None
        if path.is_file():
            with np.load(path) as f:
                keys = zip(
                    f["model"].tolist(), f["instance"].tolist(), f["size"].tolist(), strict=True
                )
                self.table = dict(zip(keys, f["loss"].tolist(), strict=True))

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            settings = jrobust.RaceSettings(seed=0)
            enable_compilation_cache()
            self._engine = Engine(self.configs, self.population, settings)
        return self._engine

    def losses(self, models: np.ndarray, instances: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        keys = [(int(m), int(i), int(s)) for m, i, s in zip(models, instances, sizes, strict=True)]
        missing = sorted({k for k in keys if k not in self.table}, key=lambda k: (k[2], k[0], k[1]))
        if missing:
            t0 = time.perf_counter()
            for size in sorted({k[2] for k in missing}):
                part = np.array([k for k in missing if k[2] == size], np.int64)
                out = self.engine(Work(part[:, 0], part[:, 1], np.full(len(part), size, np.int64)))
                losses = np.where(out.ok, out.losses, np.inf)
                self.table.update(
                    {tuple(map(int, k)): float(v) for k, v in zip(part, losses, strict=True)}
                )
            self.trained += len(missing)
            self.train_seconds += time.perf_counter() - t0
            self.save()
        return np.array([self.table[k] for k in keys])

    def save(self) -> None:
        keys = np.array(list(self.table), np.int64).reshape(-1, 3)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(
            tmp,
            model=keys[:, 0],
            instance=keys[:, 1],
            size=keys[:, 2],
            loss=np.array(list(self.table.values()), np.float64),
        )
        tmp.replace(self.path)


def cache_path(name: str, space: jrobust.SearchSpace, population: jrobust.Population) -> Path:
    key = hashlib.sha1(
        repr(
            [jrobust.__version__, [repr(c) for c in space.models], population.fingerprint()]
        ).encode()
    ).hexdigest()[:12]
    return cache_dir("benchmarks") / f"selection-{name}-{key}.npz"


class Lookup:
    """The race's evaluator for one benchmark seed: ``(model_ids, instances[, train_sizes])``."""

    def __init__(self, cache: InstanceCache, seed: int, width: int):
        self.cache = cache
        self.own = np.array([c.train_size for c in cache.configs], np.int64)
        self.perm = (
            np.arange(width) if seed == 0 else np.random.default_rng(seed).permutation(width)
        )

    def column(self, instances: np.ndarray) -> np.ndarray:
        instances = np.asarray(instances, np.int64)
        inside = instances < len(self.perm)
        return np.where(inside, self.perm[np.minimum(instances, len(self.perm) - 1)], instances)

    def __call__(self, models, instances, sizes=None):
        sizes = self.own[models] if sizes is None else np.asarray(sizes, np.int64)
        return self.cache.losses(models, self.column(instances), sizes)


def instance_steps(ledger, configs: Sequence[jrobust.ModelConfig]) -> int:
    """Optimizer steps of the ledger's instances: ``epochs * (train_size // batch_size)``."""
    epochs = np.array([c.epochs for c in configs])[ledger.model_id.to_numpy()]
    batch = np.array([c.batch_size for c in configs])[ledger.model_id.to_numpy()]
    return int((epochs * (ledger.train_size.to_numpy() // batch)).sum())


# ---------------------------------------------------------------------------------- configurations

# name -> race settings (the statistic, the fidelity schedule and max_instances added per run)
CONFIGS: dict[str, dict[str, Any]] = {
    "halving, 1 per round": dict(rule="halving", warmup=3, instances_per_round=1),
    "halving, auto": dict(rule="halving", warmup=3, instances_per_round="auto"),
    "halving, elites 1": dict(rule="halving", warmup=3, instances_per_round=1, elites=1),
    "halving, 3 winners + final 10": dict(
        rule="halving", warmup=3, instances_per_round=1, n_winners=3, final_instances=10
    ),
    "welch": dict(rule="welch", warmup=3, instances_per_round=1),
    "wilcoxon": dict(rule="wilcoxon", warmup=5, instances_per_round=1),
    "ttest_paired": dict(rule="ttest_paired", warmup=3, instances_per_round=1),
    "friedman": dict(rule="friedman", warmup=3, instances_per_round=1),
    "bootstrap": dict(rule="bootstrap", warmup=4, instances_per_round=1),
}


def exhaustive_table(cache: InstanceCache, width: int) -> np.ndarray:
    n = len(cache.configs)
    models = np.repeat(np.arange(n), width)
    instances = np.tile(np.arange(width), n)
    own = np.array([c.train_size for c in cache.configs], np.int64)
    return cache.losses(models, instances, own[models]).reshape(n, width)


def rank_in(table: np.ndarray, statistic: str, model: int) -> int:
    values = get_statistic(statistic)(table, np.ones_like(table, bool))
    order = np.argsort(values, kind="stable")
    return int(np.flatnonzero(order == model)[0]) + 1


def run_race(space, lookup: Lookup, **settings) -> dict[str, Any]:
    result = jrobust.race(space, evaluator=lookup, progress=False, **settings)
    return dict(
        trainings=int(result.n_trainings),
        steps=instance_steps(result.ledger, space.models),
        winner=int(result.winner_id),
        dominance=bool(result.dominance),
    )


def benchmark(
    name: str,
    *,
    statistics: Sequence[str] = ("mean", "std"),
    seeds: int = 5,
    width: int = 50,
    max_instances: int = 20,
    fidelity: Sequence[int] | None = None,
    configs: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every configuration x statistic x {one size, fidelity} x seed against the exhaustive
    search; returns the rows and the fidelity study."""
    make_space, make_pop, schedule = DATA[name]
    fidelity = tuple(fidelity or schedule)
    space, pop = make_space(), make_pop()
    cache = InstanceCache(space, pop, cache_path(name, space, pop))
    log(f"# {name}: {len(space)} models in {space.n_cohorts} cohorts on {pop}; cache {cache.path}")
    t0 = time.perf_counter()
    table = exhaustive_table(cache, width)
    own_steps = np.array([c.epochs * (c.train_size // c.batch_size) for c in space.models])
    full_steps = int(own_steps.sum() * width)
    full_trainings = len(space) * width
    log(
        f"exhaustive grid: {table.shape}, {full_steps} instance-steps ({time.perf_counter() - t0:.0f} s)"
    )
    rows = []
    for statistic in statistics:
        for config in configs or CONFIGS:
            for schedule_name, sched in (("one size", None), ("fidelity", fidelity)):
                for seed in range(seeds):
                    lookup = Lookup(cache, seed, width)
                    settings = dict(
                        CONFIGS[config], statistic=statistic, max_instances=max_instances, seed=0
                    )
                    if sched is not None:
                        settings["fidelity"] = sched
                    out = run_race(space, lookup, **settings)
                    out.update(
                        data=name,
                        statistic=statistic,
                        config=config,
                        schedule=schedule_name,
                        seed=seed,
                        rank=rank_in(table, statistic, out["winner"]),
                        fewer_trainings=full_trainings / out["trainings"],
                        fewer_steps=full_steps / out["steps"],
                    )
                    rows.append(out)
            for schedule_name in ("one size", "fidelity"):
                sel = [
                    r
                    for r in rows
                    if (r["statistic"], r["config"], r["schedule"])
                    == (statistic, config, schedule_name)
                ]
                log(
                    f"{statistic:5s} {config:32s} {schedule_name:8s} "
                    f"steps {np.median([r['fewer_steps'] for r in sel]):5.1f}x fewer, "
                    f"trainings {np.median([r['fewer_trainings'] for r in sel]):5.1f}x fewer, "
                    f"ranks {[r['rank'] for r in sel]}"
                )
    log(
        f"trained {cache.trained} new instances in {cache.train_seconds:.0f} s; "
        f"total {time.perf_counter() - t0:.0f} s"
    )
    return dict(
        data=name,
        models=len(space),
        cohorts=space.n_cohorts,
        population=repr(pop),
        width=width,
        max_instances=max_instances,
        fidelity=list(fidelity),
        exhaustive_trainings=full_trainings,
        exhaustive_steps=full_steps,
        exhaustive_best={
            s: int(np.argsort(get_statistic(s)(table), kind="stable")[0]) for s in statistics
        },
        rows=rows,
        new_instances=cache.trained,
        train_seconds=cache.train_seconds,
    )


def summarize(report: dict[str, Any], top_percent: float = 5.0) -> list[dict[str, Any]]:
    """One line per (statistic, configuration, schedule): medians over the seeds, the winner's
    ranks, how often it is in the exhaustive top ``top_percent`` %, and for fidelity schedules
    how often the winner equals the same configuration's one-size winner."""
    rows = report["rows"]
    top = max(1, int(np.floor(report["models"] * top_percent / 100 + 1e-9)))
    out = []
    keys = dict.fromkeys((r["statistic"], r["config"], r["schedule"]) for r in rows)
    for statistic, config, schedule in keys:
        sel = [
            r
            for r in rows
            if (r["statistic"], r["config"], r["schedule"]) == (statistic, config, schedule)
        ]
        same = None
        if schedule == "fidelity":
            base = {
                r["seed"]: r["winner"]
                for r in rows
                if (r["statistic"], r["config"], r["schedule"]) == (statistic, config, "one size")
            }
            same = float(np.mean([r["winner"] == base.get(r["seed"]) for r in sel]))
        out.append(
            dict(
                statistic=statistic,
                config=config,
                schedule=schedule,
                fewer_trainings=float(np.median([r["fewer_trainings"] for r in sel])),
                fewer_steps=float(np.median([r["fewer_steps"] for r in sel])),
                ranks=[r["rank"] for r in sel],
                in_top=float(np.mean([r["rank"] <= top for r in sel])),
                same_winner_as_one_size=same,
                dominance=sum(r["dominance"] for r in sel),
            )
        )
    return out


def markdown(report: dict[str, Any], top_percent: float = 5.0) -> str:
    top = max(1, int(np.floor(report["models"] * top_percent / 100 + 1e-9)))
    lines = [
        f"{report['data']}: {report['models']} models ({report['cohorts']} cohorts), exhaustive "
        f"{report['exhaustive_trainings']} trainings = {report['exhaustive_steps']:,} "
        f"instance-steps; races at most {report['max_instances']} instances per model and stage; "
        f"fidelity {report['fidelity']}; top {top_percent:g} % = rank <= {top}; "
        f"{len({r['seed'] for r in report['rows']})} seeds.",
        "",
        "| statistic | race | schedule | fewer instance-steps | fewer trainings "
        "| winner's rank per seed | in top 5 % | same winner as one size |",
        "|---|---|---|---:|---:|---|---:|---:|",
    ]
    for s in summarize(report, top_percent):
        same = (
            ""
            if s["same_winner_as_one_size"] is None
            else f"{100 * s['same_winner_as_one_size']:.0f} %"
        )
        lines.append(
            f"| {s['statistic']} | {s['config']} | {s['schedule']} | {s['fewer_steps']:.1f}x | "
            f"{s['fewer_trainings']:.1f}x | {', '.join(map(str, s['ranks']))} | "
            f"{100 * s['in_top']:.0f} % | {same} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", choices=sorted(DATA), default="digits")
    p.add_argument("--statistics", nargs="+", default=["mean", "std"])
    p.add_argument("--seeds", type=int, default=5, help="benchmark seeds (instance orders)")
    p.add_argument("--instances", type=int, default=50, help="instances per model, exhaustive")
    p.add_argument("--max-instances", type=int, default=20, help="per model and stage, races")
    p.add_argument("--fidelity", type=lambda t: [int(v) for v in t.split(",")], default=None)
    p.add_argument("--configs", nargs="+", default=None, choices=sorted(CONFIGS), metavar="NAME")
    p.add_argument("--json", metavar="FILE", help="write the rows as JSON")
    p.add_argument("--markdown", metavar="FILE", help="write the summary table as Markdown")
    args = p.parse_args(argv)
    report = benchmark(
        args.data,
        statistics=args.statistics,
        seeds=args.seeds,
        width=args.instances,
        max_instances=args.max_instances,
        fidelity=args.fidelity,
        configs=args.configs,
    )
    text = markdown(report)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))
    if args.markdown:
        Path(args.markdown).write_text(text)
    return report


if __name__ == "__main__":
    main()
