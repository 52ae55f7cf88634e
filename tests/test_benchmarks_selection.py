"""The selection benchmarks' core (benchmarks/selection.py, benchmarks/vs_optuna.py) on tiny
synthetic grids: held-out regrets by hand, search and held-out columns disjoint per seed, and the
CCT table read as three full-factorial spaces."""

import importlib.util
import pathlib
import sys

import numpy as np
import pytest

import jrobust

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def load(name):
    """A benchmark script as a module (registered: its dataclasses need it)."""
    if name in sys.modules:
        return sys.modules[name]
    sys.path.insert(0, str(BENCH))  # the scripts import selection_grids beside them
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


grids = load("selection_grids")
sel = load("selection")


def test_columns_of_a_seed_are_disjoint_and_cover_the_grid():
    seen_search = set()
    for seed in range(12):
        split = sel.split_columns(60, 20, 20, seed)
        parts = [set(split.search), set(split.validation), set(split.test)]
        assert [len(p) for p in parts] == [20, 20, 20]
        assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
        assert set().union(*parts) == set(range(60))
        seen_search.add(tuple(split.search))
    assert len(seen_search) == 12  # every seed draws its own search columns
    split = sel.split_columns(20, 10, 0, 3)  # the CCT split: 10 to race on, the other 10 to judge
    assert len(split.validation) == 0 and sorted({*split.search, *split.test}) == list(range(20))
    with pytest.raises(ValueError, match="at least one test column"):
        sel.split_columns(20, 10, 10, 0)


def test_a_race_looks_up_only_its_search_columns():
    rng = np.random.default_rng(0)
    losses = rng.random((8, 30))
    split = sel.split_columns(30, 10, 10, 5)
    visible = np.full_like(losses, np.nan)  # everything but the search columns is blanked
    visible[:, split.search] = losses[:, split.search]
    result = jrobust.race(8, evaluator=sel.lookup(visible, split.search), max_instances=10)
    assert np.isfinite(result.ledger.loss).all()
    assert result.ledger.instance.max() < 10
    np.testing.assert_array_equal(
        result.ledger.loss, losses[result.ledger.model_id, split.search[result.ledger.instance]]
    )
    with pytest.raises(IndexError, match="beyond the 10 search columns"):
        sel.lookup(losses, split.search)(np.array([0]), np.array([10]))


def test_held_out_regret_rank_and_top_by_hand():
    # held-out losses of 4 models on 4 columns
    heldout = np.array(
        [
            [1.0, 1.0, 1.0, 1.0],  # mean 1.0, std 0
            [0.8, 0.9, 1.0, 1.1],  # mean 0.95, std 0.1291
            [0.5, 1.5, 0.5, 1.5],  # mean 1.0, std 0.5774
            [2.0, 2.0, 2.0, 2.2],  # mean 2.05, std 0.1
        ]
    )
    values = sel.heldout_values(heldout, ["mean", "std", "pd", "max"])
    j = sel.judge(values, 2, "max")
    assert j["regret_mean"] == pytest.approx(1.0 - 0.95)
    assert j["regret_std"] == pytest.approx(np.sqrt(1 / 3))  # the best std is 0 (model 0)
    # PD = Q90 - Q10 (linear): model 2's 1.5 - 0.5 = 1.0, model 0's 0
    assert j["regret_pd"] == pytest.approx(1.0)
    assert j["rank_mean"] == pytest.approx(1 / 3)  # one model strictly better of the other 3
    # top 5 % of 4 models is the best alone: by max (1.5) model 2 is second-best (model 0: 1.0)
    assert j["top_own"] == 0.0 and j["top_mean"] == 0.0
    best = sel.judge(values, 1, "mean")
    assert best["regret_mean"] == 0.0 and best["top_mean"] == 1.0 and best["rank_mean"] == 0.0
    # random choice: the mean over the models of their regrets
    chance = sel.judge(values, None, "mean")
    assert chance["regret_mean"] == pytest.approx(np.mean(values["mean"] - 0.95))
    assert chance["top_mean"] == pytest.approx(0.25)


def test_a_seed_judged_on_a_planted_grid(monkeypatch):
    """Model 2 is best on every column; exhaustive search and the race find it, the regrets of
    random choice are the mean over the models, and a validation pass never sees test columns."""
    rng = np.random.default_rng(1)
    losses = 1.0 + 0.1 * np.arange(6)[:, None] + 0.01 * rng.random((6, 40))
    losses[[0, 2]] = losses[[2, 0]]
    grid = grids.Grid("planted", losses, [f"m{i}" for i in range(6)], {})
    monkeypatch.setitem(sel.SPLITS, "planted", (10, 10))
    strategies = [
        sel.race_strategy("race (defaults)"),
        sel.exhaustive_for(sel.race_strategy("race (defaults)"), budget=False),
        sel.exhaustive_for(sel.race_strategy("race (defaults)"), budget=True),
        sel.RANDOM,
    ]
    for heldout in ("validation", "test"):
        rows = {r["strategy"]: r for r in sel.evaluate_seed(grid, strategies, 4, heldout)}
        split = sel.split_columns(40, 10, 10, 4)
        means = losses[:, getattr(split, heldout)].mean(axis=1)
        assert rows["race (defaults)"]["winner"] == 2
        assert rows["race (defaults)"]["regret_mean"] == 0.0
        full = rows["exhaustive (max), all search columns"]
        assert full["winner"] == 2 and full["trainings"] == 60
        budget = rows["exhaustive (max), race (defaults)'s budget"]
        assert budget["trainings"] == 6 * (rows["race (defaults)"]["trainings"] // 6)
        chance = rows["random choice (expected)"]
        assert chance["regret_mean"] == pytest.approx(np.mean(means - means.min()))
        assert chance["trainings"] == 0 and chance["winner"] is None


def test_validation_pass_blanks_the_test_columns(monkeypatch):
    """A search that reached a test column in the validation pass would meet NaN and stop."""
    losses = np.random.default_rng(2).random((4, 12))
    grid = grids.Grid("tiny", losses, list("abcd"), {})
    monkeypatch.setitem(sel.SPLITS, "tiny", (4, 4))
    peek = sel.Strategy("peek", "exhaustive", (("statistic", "mean"),))
    rows = sel.evaluate_seed(grid, [peek], 0, "validation")  # searching its own columns: fine
    assert np.isfinite(rows[0]["regret_mean"])
    original = sel.split_columns

    def search_on_test(n, s, v, seed):
        out = original(n, s, v, seed)
        return sel.Split(out.test, out.validation, out.test)

    monkeypatch.setattr(sel, "split_columns", search_on_test)
    with pytest.raises(RuntimeError, match="blanked"):
        sel.evaluate_seed(grid, [peek], 0, "validation")


def test_cct_table_is_three_full_factorial_spaces():
    spaces = grids.load_cct()
    assert [g.name for g in spaces] == ["cct-10k", "cct-20k", "cct-30k"]
    frame = __import__("pandas").read_csv(grids.CCT_CSV)
    rows = []
    for g in spaces:
        assert g.losses.shape == (64, 20) and len(set(g.names)) == 64
        part = frame.loc[[m["row"] for m in g.meta["models"]]]
        assert part.dt_len.nunique() == 1
        assert len(part[list(grids.CCT_FACTORS)].drop_duplicates()) == 64 == 2**6
        np.testing.assert_allclose(
            g.losses, 1 - part[[f"acc_{i}" for i in range(1, 21)]].to_numpy()
        )
        rows += list(part.index)
    assert sorted(rows) == list(range(192))


def test_optuna_accounting_and_factors():
    vo = load("vs_optuna")
    losses = np.arange(24.0).reshape(2, 12)
    charged = vo.Charged(losses, np.arange(12)[::-1], budget=3)
    assert charged.one(1, 0) == 23.0
    charged.one(1, 0)  # trained again: charged again, one repeat
    assert charged.trainings == 2 and charged.repeated == 1
    charged.one(0, 1)
    with pytest.raises(vo.BudgetSpent):
        charged.one(0, 2)
    cached = vo.Charged(losses, np.arange(12), budget=2, cache=True)
    cached.one(0, 0), cached.one(0, 0), cached.one(0, 1)
    assert cached.trainings == 2
    # the calorimeter grid's conv and pool split the models alike: one factor, 2 x 4 x 2 x 2
    calo = grids.load_grid("calo")
    choices, index = vo.factors(calo)
    assert [len(v) for v in choices.values()] == [2, 4, 2, 2]
    assert sorted(index.values()) == list(range(32))


def test_optuna_searches_spend_the_budget_on_search_columns_only():
    pytest.importorskip("optuna")
    vo = load("vs_optuna")
    rng = np.random.default_rng(3)
    losses = 1.0 + 0.05 * np.arange(8)[:, None] + 0.02 * rng.random((8, 16))
    models = [dict(model_id=m, name=f"a{m // 4} b{m % 4}", a=m // 4, b=m % 4) for m in range(8)]
    grid = grids.Grid("toy", losses, [m["name"] for m in models], dict(models=models))
    search, fresh = vo.split(16, 8, 0)
    assert not set(search) & set(fresh)
    rows = vo.run_seed(grid, 0, 8, 3, None)
    budget = rows[0]["trainings"]
    assert rows[0]["search"] == "race (defaults)" and rows[0]["winner"] == 0
    for r in rows:
        if r["search"].startswith("TPE"):
            assert r["trainings"] <= budget
        values = jrobust.get_statistic("mean")(losses[:, fresh])
        assert r["fresh_mean"] == pytest.approx(values[r["winner"]])
        assert r["regret_mean"] == pytest.approx(values[r["winner"]] - values.min())
