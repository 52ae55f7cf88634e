"""benchmarks/search.py's machinery (not its findings): the quick mode's arguments, the grid of
the race column, the fresh judgement by hand, the summary over seeds, one tiny column against
models trained alone, and the ``jrobust.search`` column called as the contract says."""

import importlib.util
import pathlib
import sys
import types

import numpy as np
import pytest

import jrobust

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def load(name):
    """A benchmark script as a module (registered: its dataclasses need it)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bench = load("search")


def test_quick_mode_and_bad_arguments(capsys, monkeypatch):
    args = bench.parse(["--quick", "--methods", "grid", "tpe", "bridge", "random"])
    assert (args.seeds, args.budget, args.instances, args.fresh) == (1, 24, 4, 4)
    assert args.methods == ["grid", "tpe", "bridge", "random"] and args.spaces == ["digits"]
    assert args.shared_programs and args.epochs == 1 and args.train_size == 300
    assert args.statistic == jrobust.RaceSettings().statistic
    assert bench.parse(["--quick", "--methods", "tpe", "--budget", "40"]).budget == 40
    bad = [
        ["--methods", "grid", "hyperband"],
        ["--budget", "15"],  # fewer than 2 models of 10 instances
        ["--seeds", "0"],
        ["--statistic", "nonsense"],
        ["--quick", "--train-size", "20"],
    ]
    if not hasattr(jrobust, "search"):
        bad.append(["--methods", "search"])
    for argv in bad:
        with pytest.raises(SystemExit) as exit_:
            bench.parse(argv)
        assert exit_.value.code == 2
        assert "error:" in capsys.readouterr().err
    monkeypatch.setattr(jrobust, "search", lambda *a, **k: None, raising=False)
    full = bench.parse(["--spaces", "calo", "--seeds", "3", "--budget", "100"])
    assert (full.seeds, full.budget, full.instances, full.batch, full.fresh) == (3, 100, 10, 8, 20)
    assert full.methods == list(bench.METHODS) and full.spaces == ["calo"]
    assert not full.shared_programs and full.epochs is None  # each space's own epochs


def test_grid_has_the_budgets_models_at_cell_centres():
    np.testing.assert_allclose(
        bench.cell_centres(1e-4, 1e-1, 3), [10**-3.5, 10**-2.5, 10**-1.5], rtol=1e-12
    )
    assert bench.grid_axes(24, 3) == (4, 2)  # 8 cells per width: 4 x 2
    assert bench.grid_axes(6, 3) == (2, 1)
    assert bench.grid_axes(21, 3) == (3, 2)  # 7 cells: 6 of them, not 7 learning rates alone
    assert bench.grid_axes(2, 3) == (1, 1)  # at least one model per width
    setup = bench.Setup("digits", (16, 32, 64), 1, 100, population=None)
    grid = setup.grid(24)
    assert len(grid) == 24
    models = grid.models
    assert {m.architecture.hidden for m in models} == {(16,), (32,), (64,)}
    for m in models:
        assert bench.LEARNING_RATE[0] < m.learning_rate < bench.LEARNING_RATE[1]
        assert bench.WEIGHT_DECAY[0] < m.weight_decay < bench.WEIGHT_DECAY[1]


def test_fresh_values_by_hand():
    values = bench.fresh_values(np.array([1.0, 2.0, 3.0, 4.0, 10.0]))
    assert values["mean"] == pytest.approx(4.0)
    assert values["std"] == pytest.approx(np.std([1, 2, 3, 4, 10], ddof=1))
    # linear quantiles: Q10 = 1 + 0.4 * 1 = 1.4, Q90 = 4 + 0.6 * 6 = 7.6
    assert values["pd"] == pytest.approx(7.6 - 1.4)
    failed = bench.fresh_values(np.array([1.0, np.inf]))
    assert failed["mean"] == np.inf and failed["std"] == np.inf


def test_summary_over_seeds_by_hand():
    def row(method, seed, mean, std):
        return dict(
            space="digits", method=method, seed=seed, trainings=24, seconds=1.0,
            compiled=2 if seed == 0 else 1, compiles=3, compile_seconds=0.5, fresh_mean=mean,
            fresh_std=std, fresh_pd=2 * std,
        )  # fmt: skip

    rows = [
        row("search", 0, 1.0, 0.1), row("search", 1, 2.0, 0.1), row("search", 2, 1.0, 0.5),
        row("grid", 0, 1.5, 0.2), row("grid", 1, 1.0, 0.2), row("grid", 2, 3.0, 0.5),
    ]  # fmt: skip
    summary = {s["method"]: s for s in bench.summarize(rows)}
    grid = summary["grid"]
    assert grid["fresh_mean"]["median"] == 1.5
    assert (grid["fresh_mean"]["low"], grid["fresh_mean"]["high"]) == (1.0, 3.0)
    lo, hi = grid["fresh_mean"]["mean_ci"]
    assert 1.0 <= lo <= np.mean([1.5, 1.0, 3.0]) <= hi <= 3.0
    # seed 0: better on both; seed 1: worse mean; seed 2: equal std, better mean
    assert grid["search_as_good"] == 2
    assert "search_as_good" not in summary["search"]
    assert (grid["compiled"], grid["compiled_all_seeds"]) == (2, 4)  # the first seed's, all


@pytest.fixture(scope="module")
def tiny():
    """The digits MLPs (10 outputs) on a small random population of 10 classes: one epoch of
    one batch of 50 samples per instance."""
    rng = np.random.default_rng(0)
    x, y = rng.random((200, 6)).astype(np.float32), np.arange(200) % 10
    pop = jrobust.data.from_arrays(x, y, name="tiny", num_classes=10)
    return bench.Setup("digits", (4, 8), 1, 50, population=pop)


def test_random_column_picks_the_best_by_the_statistic(tiny):
    column = bench.run_random(tiny, 6, 0, 2, 1, "max")
    assert column.trainings == 6
    drawn = tiny.space().sample(3, seed=np.random.default_rng([0, 7]))
    # every drawn model trained alone on instances 0 and 1: the winner has the lowest max
    worst = [jrobust.train_instances(c, tiny.population, [0, 1])["loss"].max() for c in drawn]
    assert repr(column.winner) == repr(drawn[int(np.argmin(worst))])
    rows = bench.run_seed(tiny, 0, ["random"], 6, 2, 1, 3, "max")
    (r,) = rows
    assert r["trainings"] == 6 and len(r["fresh_losses"]) == 3
    fresh = jrobust.train_instances(column.winner, tiny.population, [1000, 1001, 1002])["loss"]
    np.testing.assert_allclose(r["fresh_losses"], fresh, rtol=1e-6)
    assert r["fresh_mean"] == pytest.approx(np.mean(fresh))
    # programs compiled by a column: a width no test trained before compiles, once
    narrow = bench.Setup("digits", (3,), 1, 50, population=tiny.population)
    first = bench.run_seed(narrow, 0, ["random"], 6, 2, 1, 3, "max")[0]
    again = bench.run_seed(narrow, 0, ["random"], 6, 2, 1, 3, "max")[0]
    assert first["compiled"] >= 1 and again["compiled"] == 0
    assert again["fresh_losses"] == first["fresh_losses"]


def test_search_column_calls_the_contract(tiny, monkeypatch):
    """Until ``jrobust.search`` exists, a stand-in with the contract's signature checks that
    the column passes the ranged space, the population, ``budget`` and ``seed``, and reads the
    winner from ``configs[winner_id]``."""
    calls = []

    def search(space, population=None, *, budget, seed=0, **overrides):
        calls.append(dict(space=space, population=population, budget=budget, seed=seed))
        configs = space.sample(3, seed=seed)
        return types.SimpleNamespace(
            configs=configs, winner_id=1, n_trainings=budget - 1, iterations=None, timing={}
        )

    monkeypatch.setattr(jrobust, "search", search, raising=False)
    column = bench.run_search(tiny, 12, 4, 2, 1, "max")
    (call,) = calls
    assert call["budget"] == 12 and call["seed"] == 4 and call["population"] is tiny.population
    assert not call["space"].is_finite and set(call["space"].parameters) == {
        "learning_rate", "weight_decay", "hidden",
    }  # fmt: skip
    assert repr(column.winner) == repr(call["space"].sample(3, seed=4)[1])
    assert column.trainings == 11
