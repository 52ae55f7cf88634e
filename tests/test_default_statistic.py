"""The default statistic, by the measurement cases of benchmarks/default_statistic.py: the
default picks the right model on each planted table, where other statistics rank a trap first;
the race still escapes those traps that another model beats on mean, std and PD (the dominance
guarantee), but not a constant poor model under a spread statistic."""

import importlib.util
import pathlib

import numpy as np
import pytest

import jrobust
from jrobust._src.settings import RaceSettings
from jrobust._src.stats import get_statistic

W, RIGHT, TRAP = 50, 7, 0  # the right model is not the lowest id: ties would favour the trap
K = np.arange(W)
Z = np.sqrt(2) * np.sin(1.7 * K + 0.3)  # a fixed sequence, mean about 0, sd about 1
Z2 = np.sqrt(2) * np.sin(2.3 * K + 1.1)


def fillers(level=1.1, step=0.02, sigma=0.08):
    """16 clearly worse models (rows RIGHT and TRAP are replaced)."""
    return np.array(
        [
            level + step * j + sigma * np.sqrt(2) * np.sin((0.9 + 0.37 * j) * K + j)
            for j in range(16)
        ]
    )


def planted(right, trap, **kw):
    table = fillers(**kw)
    table[RIGHT], table[TRAP] = right, trap
    return table


def cases():
    """One table per measurement case; row RIGHT is the right answer, row TRAP the trap."""
    out = {}
    outlier = 0.035 + 0.0005 * Z2
    outlier[4::10] = 0.073  # one instance in ten looks failed (the measured case)
    out["outlier instance"] = planted(
        0.036 + 0.0026 * Z, outlier, level=0.040, step=0.001, sigma=0.003
    )
    out["equal means, wider spread"] = planted(1.0 + 0.05 * Z, 1.0 + 0.2 * Z2)
    out["constant but poor"] = planted(1.0 + 0.05 * Z, np.full(W, 1.5))
    tail = np.full(W, 0.975)
    tail[4::6] = 1.6  # median 0.975 (better than the right model's), mean 1.08
    out["heavy tail"] = planted(1.0 + 0.02 * Z, tail)
    failing = 0.95 + 0.03 * Z2
    failing[4::7] = np.inf  # better when it works, fails one instance in seven
    out["failures"] = planted(1.0 + 0.03 * Z, failing)
    plain = fillers(level=1.05, step=0.05, sigma=0.1)
    plain[RIGHT], plain[TRAP] = 1.0 + 0.1 * Z, 1.05 + 0.1 * Z2
    out["plain quality"] = plain
    return out


def winner(table, **kw):
    return jrobust.race(len(table), evaluator=lambda m, i: table[m, i], **kw).winner_id


def test_the_default_is_max_ranked_by_itself():
    s = RaceSettings()
    assert (s.statistic, s.rank_by) == ("max", None)
    assert s.describe()["rank_by"] == "max"


@pytest.mark.parametrize("name", list(cases()))
def test_the_default_picks_the_right_model(name):
    assert winner(cases()[name]) == RIGHT


TRAPS = [
    ("std", "constant but poor"),  # the paper's caveat: a constant model is perfectly robust
    ("pd", "constant but poor"),
    ("q3+iqr", "outlier instance"),  # the measured case
    ("q3+iqr", "heavy tail"),
    ("median", "failures"),
    ("median", "outlier instance"),
]


def reference_values(row):
    """Mean, std (ddof 1) and PD (Q90 - Q10) with NumPy; a failed (+inf) instance makes all
    three infinite, as the race's statistics do."""
    row = np.asarray(row, float)
    if not np.isfinite(row).all():
        return np.full(3, np.inf)
    return np.array([row.mean(), row.std(ddof=1), *np.diff(np.quantile(row, [0.1, 0.9]))])


@pytest.mark.parametrize(("statistic", "name"), TRAPS)
def test_other_statistics_rank_the_traps_first(statistic, name):
    table = cases()[name]
    assert np.argmin(np.asarray(get_statistic(statistic)(table))) == TRAP


@pytest.mark.parametrize("statistic", ["std", "pd"])
def test_spread_statistics_crown_the_constant_poor_model(statistic):
    # nothing has a smaller spread than a constant, so the dominance guarantee cannot help
    assert winner(cases()["constant but poor"], statistic=statistic) == TRAP


@pytest.mark.parametrize(("statistic", "name"), [t for t in TRAPS if t[1] != "constant but poor"])
def test_the_dominance_guarantee_removes_the_other_traps(statistic, name):
    """The statistic ranks the trap first, but an elimination that would keep it removes a model
    that beats it on mean, std and PD: the guarantee keeps that model and the trap leaves."""
    table = cases()[name]
    result = jrobust.race(len(table), evaluator=lambda m, i: table[m, i], statistic=statistic)
    assert result.winner_id == RIGHT
    path = result.path
    left = path[(path["model_id"] == TRAP) & (path["reason"] != "")]
    assert left["reason"].tolist() == ["dominated"]
    rnd, n = int(left["round"].iloc[0]), int(left["instances"].iloc[0])
    swaps = result.history["swaps"].tolist() + result.history["finalist_swaps"].tolist()
    kept = [int(r) for pairs in swaps for r, k in pairs if k == TRAP]
    assert len(kept) == 1
    m = int(path[(path["model_id"] == kept[0]) & (path["round"] == rnd)]["instances"].iloc[0])
    assert m >= n  # the evaluator hands out instances 0, 1, ... in order
    assert (reference_values(table[kept[0], :m]) < reference_values(table[TRAP, :n])).all()


def test_the_default_has_the_best_worst_case_on_random_planted_draws():
    """benchmarks/default_statistic.py's cases, 20 draws each, with the JAX race's auto rounds."""
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "default_statistic.py"
    spec = importlib.util.spec_from_file_location("default_statistic", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    worst = {}
    for statistic in ("max", "mean", "std", "q3+iqr", "median"):
        rates = []
        for make in bench.CASES.values():
            tables = [make(np.random.default_rng([11, r]), W) for r in range(20)]
            wins = [
                bench.planted_race(t, statistic, None, r, instances_per_round="auto") == 0
                for r, t in enumerate(tables)
            ]
            rates.append(np.mean(wins))
        worst[statistic] = min(rates)
    assert worst["max"] >= 0.6
    assert worst["max"] > max(v for k, v in worst.items() if k != "max"), worst
