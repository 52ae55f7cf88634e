"""Exhaustive search versus the race on the same space: trainings, wall time, and where the race's
winner ranks in the exhaustive ranking.

The exhaustive search trains every model ``--instances`` times and ranks the models by the
statistic; the race (halving after ``--warmup`` instances) trains a fraction of that. Both use the
same seed, so the race's instances are a subset of the exhaustive grid (common random numbers).

    python benchmarks/selection.py                       # 64 MLPs on scikit-learn's digits
    python benchmarks/selection.py --statistic std --instances 50 --warmup 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import jrobust
from jrobust import zoo
from jrobust.stats import get_statistic


def digits_space(train_size: int = 600, epochs: int = 6) -> jrobust.SearchSpace:
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


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--statistic", default="mean")
    p.add_argument(
        "--instances", type=int, default=50, help="instances per model, exhaustive search"
    )
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    space, pop = digits_space(), digits_population()
    common = dict(statistic=args.statistic, seed=args.seed, compilation_cache=False)
    # "race": instances_per_round="auto" (the JAX default); "paper_race": one instance per round
    print(f"# {len(space)} models in {space.n_cohorts} cohorts on {pop}", flush=True)

    t0 = time.perf_counter()
    full = jrobust.exhaustive(
        space, pop, instances=args.instances, instances_per_round=args.instances, **common
    )
    t_full = time.perf_counter() - t0
    t0 = time.perf_counter()
    raced = jrobust.race(
        space, pop, rule="halving", warmup=args.warmup, max_instances=args.instances, **common
    )
    t_race = time.perf_counter() - t0
    t0 = time.perf_counter()
    paper = jrobust.race(
        space,
        pop,
        rule="halving",
        warmup=args.warmup,
        max_instances=args.instances,
        instances_per_round=1,
        **common,
    )
    t_paper = time.perf_counter() - t0

    stat = get_statistic(args.statistic)
    table = np.stack([full.losses(m) for m in range(len(space))])
    values = stat(table, np.ones_like(table, bool))
    ranking = np.argsort(values, kind="stable")
    rank = int(np.flatnonzero(ranking == raced.winner_id)[0]) + 1
    rank_paper = int(np.flatnonzero(ranking == paper.winner_id)[0]) + 1
    # the race's own instances agree with the exhaustive grid (common random numbers)
    sample = raced.ledger.iloc[len(raced.ledger) // 3]
    same = np.isclose(
        full.losses(int(sample.model_id))[int(sample.instance)], sample.loss, rtol=1e-5
    )
    out = dict(
        models=len(space),
        cohorts=space.n_cohorts,
        statistic=args.statistic,
        instances=args.instances,
        warmup=args.warmup,
        exhaustive_trainings=full.n_trainings,
        race_trainings=raced.n_trainings,
        fewer_trainings=full.n_trainings / raced.n_trainings,
        exhaustive_seconds=t_full,
        race_seconds=t_race,
        exhaustive_compile=full.timing["compile_seconds"],
        race_compile=raced.timing["compile_seconds"],
        winner=raced.winner_id,
        winner_rank=rank,
        top_percent=100.0 * rank / len(space),
        exhaustive_best=int(ranking[0]),
        same_instance_losses=bool(same),
        exhaustive_train_seconds=full.timing["train_seconds"],
        race_train_seconds=raced.timing["train_seconds"],
        paper_race_trainings=paper.n_trainings,
        paper_fewer_trainings=full.n_trainings / paper.n_trainings,
        paper_race_seconds=t_paper,
        paper_race_train_seconds=paper.timing["train_seconds"],
        paper_winner=paper.winner_id,
        paper_winner_rank=rank_paper,
    )
    for k, v in out.items():
        print(f"{k:26s} {v:.4g}" if isinstance(v, float) else f"{k:26s} {v}")
    return out


if __name__ == "__main__":
    main()
