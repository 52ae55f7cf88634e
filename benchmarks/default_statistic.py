"""Which statistic should a race use by default? Planted tables.

Planted tables: a lookup evaluator draws every instance loss from a model's planted
distribution, one distribution per case, where one model is the right answer by design (and a
trap model looks good to some statistic). Every candidate default races each case ``--repeats``
times (a new draw each) with the race's defaults otherwise (halving after 3 warm-up instances, at
most 50 instances, one instance per round as with an evaluator, and ``"auto"`` rounds as with
the JAX trainer); the table counts how often the right model wins.

The choice on real instance losses, judged on instances no search saw, is phase 1 of
``benchmarks/selection.py`` (its earlier part 2 here let the races see the ground-truth columns;
it is withdrawn, see ``benchmarks/RESULTS.md``).

    python benchmarks/default_statistic.py
    python benchmarks/default_statistic.py --repeats 200
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np

import jrobust

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
        progress=False,
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


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--repeats", type=int, default=100)
    p.add_argument("--markdown", metavar="FILE")
    args = p.parse_args(argv)
    text = []
    for rounds in ("1", "auto"):
        text.append(planted_markdown(planted(args.repeats, rounds=rounds), args.repeats, rounds))
        print(text[-1], flush=True)
    if args.markdown:
        Path(args.markdown).write_text("\n".join(text))


if __name__ == "__main__":
    main()
