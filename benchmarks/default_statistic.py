"""Which statistic should a race use by default? Planted tables and the selection benchmark.

Part 1, planted tables: a lookup evaluator draws every instance loss from a model's planted
distribution, one distribution per case, where one model is the right answer by design (and a
trap model looks good to some statistic). Every candidate default races each case ``--repeats``
times (a new draw each) with the race's defaults otherwise (halving after 3 warm-up instances, at
most 50 instances, one instance per round as with an evaluator, and ``"auto"`` rounds as with
the JAX trainer); the table counts how often the right model wins.

Part 2, the selection benchmark (``benchmarks/selection.py``'s cached instance grids): each
candidate races digits' 64 MLPs and the calorimeter's 32 CNNs with the defaults of a JAX race
(halving, warm-up 3, ``"auto"`` rounds, at most 50 instances) over ``--seeds`` instance orders;
the table gives how often the winner is the exhaustive search's best model by the same statistic,
its mean rank there, and its mean rank by the exhaustive mean and std.

    python benchmarks/default_statistic.py                 # both parts
    python benchmarks/default_statistic.py --part planted --repeats 200
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

import jrobust
from jrobust.stats import get_statistic

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: (statistic, rank_by) pairs; rank_by None: the statistic.
CANDIDATES = [
    ("std", None),
    ("mean", None),
    ("median", None),
    ("q3+iqr", None),
    ("pd", None),
    ("q3", None),
    ("q90", None),
    ("max", None),
    ("std", "mean"),
    ("mean", "std"),
]

N_MODELS = 16


def _fillers(rng, n, shape, level=1.1, step=0.02, sigma=0.08):
    """Clearly worse models: means from ``level`` up, moderate spread."""
    mu = level + step * np.arange(n)
    return mu[:, None] + sigma * rng.standard_normal((n, shape))


def case_outlier(rng, width):
    """The measured case: a tight model with now and then a failed-looking instance at twice
    its level (median 0.035, one instance in ten at 0.073) against a model better on mean, std
    and PD in expectation (0.036, 0.0026). Right: the latter (model 0)."""
    right = 0.036 + 0.0026 * rng.standard_normal(width)
    trap = 0.035 + 0.0005 * rng.standard_normal(width)
    trap = np.where(rng.random(width) < 0.1, 0.073, trap)
    rest = _fillers(rng, N_MODELS - 2, width, level=0.040, step=0.001, sigma=0.003)
    return np.vstack([right, trap, rest])


def case_equal_means(rng, width):
    """Equal means, different spreads: N(1, 0.05) against N(1, 0.2). Right: the narrow one."""
    right = 1.0 + 0.05 * rng.standard_normal(width)
    trap = 1.0 + 0.20 * rng.standard_normal(width)
    return np.vstack([right, trap, _fillers(rng, N_MODELS - 2, width)])


def case_constant_poor(rng, width):
    """The paper's caveat: a constant model is perfectly robust. A constant 1.5 against
    N(1, 0.05). Right: the good one."""
    right = 1.0 + 0.05 * rng.standard_normal(width)
    trap = np.full(width, 1.5)
    return np.vstack([right, trap, _fillers(rng, N_MODELS - 2, width)])


def case_heavy_tail(rng, width):
    """Heavy right tail: 0.97 + 0.03 Pareto(1.5) (median 0.988, mean 1.03, infinite variance)
    against N(1, 0.02). Right: the normal one (better mean, robust)."""
    right = 1.0 + 0.02 * rng.standard_normal(width)
    trap = 0.97 + 0.03 * rng.pareto(1.5, width)
    return np.vstack([right, trap, _fillers(rng, N_MODELS - 2, width)])


def case_failures(rng, width):
    """Failures: N(0.95, 0.03) whose instances fail (+inf) one time in seven, against
    N(1, 0.03) that never fails. Right: the one that never fails."""
    right = 1.0 + 0.03 * rng.standard_normal(width)
    trap = np.where(rng.random(width) < 1 / 7, np.inf, 0.95 + 0.03 * rng.standard_normal(width))
    return np.vstack([right, trap, _fillers(rng, N_MODELS - 2, width)])


def case_plain_quality(rng, width):
    """Plain quality: N(1, 0.1) against models worse on average by 0.05 to 0.75 with the same
    spread. Right: the best on average."""
    right = 1.0 + 0.1 * rng.standard_normal(width)
    rest = _fillers(rng, N_MODELS - 1, width, level=1.05, step=0.05, sigma=0.1)
    return np.vstack([right, rest])


CASES: dict[str, Callable] = {
    "outlier instance": case_outlier,
    "equal means, wider spread": case_equal_means,
    "constant but poor": case_constant_poor,
    "heavy tail": case_heavy_tail,
    "failures": case_failures,
    "plain quality": case_plain_quality,
}


def planted_race(
    table: np.ndarray, statistic: str, rank_by: str | None, shuffle: int, **settings
) -> int:
    """The winner of a race over a planted table, as its planted row (the rows are shuffled by
    ``shuffle`` first, so that ties, which go to the lower id, favour no one)."""
    order = np.random.default_rng([13, shuffle]).permutation(len(table))
    shuffled = table[order]
    result = jrobust.race(
        len(table),
        evaluator=lambda m, i: shuffled[m, i],
        statistic=statistic,
        rank_by=rank_by,
        progress=False,  # thousands of small races: no display
        **settings,
    )
    return int(order[result.winner_id])  # the planted row of the winner


def planted(repeats: int, width: int = 50, rounds: str = "1") -> dict[tuple, dict[str, float]]:
    """How often each candidate picks the planted right model (row 0) in each case."""
    ipr = 1 if rounds == "1" else "auto"
    out: dict[tuple, dict[str, float]] = {}
    for name, make in CASES.items():
        tables = [make(np.random.default_rng([11, r]), width) for r in range(repeats)]
        for statistic, rank_by in CANDIDATES:
            wins = [
                planted_race(t, statistic, rank_by, r, instances_per_round=ipr) == 0
                for r, t in enumerate(tables)
            ]
            out.setdefault((statistic, rank_by), {})[name] = float(np.mean(wins))
    return out


def planted_markdown(results: dict[tuple, dict[str, float]], repeats: int, rounds: str) -> str:
    cases = list(CASES)
    lines = [
        f"Planted tables, {repeats} draws per case, halving after 3 warm-up instances, "
        f"{'one instance' if rounds == '1' else 'auto instances'} per round, at most 50 "
        f"instances; share of races won by the right model:",
        "",
        "| statistic | rank_by | " + " | ".join(cases) + " | all cases (min) |",
        "|---|---|" + "---:|" * (len(cases) + 1),
    ]
    for (statistic, rank_by), row in results.items():
        cells = " | ".join(f"{100 * row[c]:.0f} %" for c in cases)
        lines.append(
            f"| {statistic} | {rank_by or '(same)'} | {cells} | {100 * min(row.values()):.0f} % |"
        )
    return "\n".join(lines) + "\n"


def selection(data: str, seeds: int, width: int = 50) -> list[dict]:
    """Each candidate's race on the cached grid of ``benchmarks/selection.py``."""
    import selection as sel  # benchmarks/selection.py

    make_space, make_pop, _ = sel.DATA[data]
    space, pop = make_space(), make_pop()
    cache = sel.InstanceCache(space, pop, sel.cache_path(data, space, pop))
    table = sel.exhaustive_table(cache, width)
    full = np.ones_like(table, bool)
    mean_rank = np.argsort(np.argsort(get_statistic("mean")(table, full), kind="stable"))
    std_rank = np.argsort(np.argsort(get_statistic("std")(table, full), kind="stable"))
    rows = []
    for statistic, rank_by in CANDIDATES:
        ranks, best, by_mean, by_std, steps = [], [], [], [], []
        own_values = get_statistic(rank_by or statistic)(table, full)
        own_rank = np.argsort(np.argsort(own_values, kind="stable"))
        for seed in range(seeds):
            result = jrobust.race(
                space,
                evaluator=sel.Lookup(cache, seed, width),
                statistic=statistic,
                rank_by=rank_by,
                max_instances=width,
                instances_per_round="auto",
                progress=False,
            )
            w = result.winner_id
            ranks.append(int(own_rank[w]) + 1)
            best.append(own_rank[w] == 0)
            by_mean.append(int(mean_rank[w]) + 1)
            by_std.append(int(std_rank[w]) + 1)
            steps.append(sel.instance_steps(result.ledger, space.models))
        rows.append(
            dict(
                data=data,
                statistic=statistic,
                rank_by=rank_by,
                found_best=float(np.mean(best)),
                rank=float(np.mean(ranks)),
                ranks=ranks,
                rank_by_mean=float(np.mean(by_mean)),
                rank_by_std=float(np.mean(by_std)),
                steps=float(np.median(steps)),
            )
        )
        print(rows[-1], flush=True)
    return rows


def selection_markdown(rows: list[dict], seeds: int) -> str:
    lines = [
        f"Selection benchmark, {seeds} instance orders, halving after 3 warm-up instances with "
        "auto rounds (the JAX race's defaults), at most 50 instances; ranks in the exhaustive "
        "search of 50 instances per model:",
        "",
        "| data | statistic | rank_by | winner = exhaustive best (own statistic) | mean rank "
        "(own) | ranks per seed | mean rank by exhaustive mean | by exhaustive std |",
        "|---|---|---|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['data']} | {r['statistic']} | {r['rank_by'] or '(same)'} | "
            f"{100 * r['found_best']:.0f} % | {r['rank']:.1f} | {', '.join(map(str, r['ranks']))} "
            f"| {r['rank_by_mean']:.1f} | {r['rank_by_std']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--part", choices=("planted", "selection", "both"), default="both")
    p.add_argument("--repeats", type=int, default=100)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--data", nargs="+", default=["digits", "calo"])
    p.add_argument("--markdown", metavar="FILE")
    args = p.parse_args(argv)
    text = []
    if args.part in ("planted", "both"):
        for rounds in ("1", "auto"):
            text.append(
                planted_markdown(planted(args.repeats, rounds=rounds), args.repeats, rounds)
            )
            print(text[-1], flush=True)
    if args.part in ("selection", "both"):
        rows = [r for data in args.data for r in selection(data, args.seeds)]
        text.append(selection_markdown(rows, args.seeds))
        print(text[-1], flush=True)
    if args.markdown:
        Path(args.markdown).write_text("\n".join(text))


if __name__ == "__main__":
    main()
