"""``jrobust.search``: iterated racing over sampled candidates (an evaluator, and the engine)."""

import collections

import numpy as np
import pandas as pd
import pytest

import jrobust
from jrobust import ModelConfig, SearchSpace
from jrobust._src.checks import CheckError
from jrobust._src.result import ITERATION_COLUMNS
from jrobust._src.search.sampling import (
    SamplingModel,
    collapsed,
    sample_children,
    sample_uniform,
)
from jrobust.space import intrange, loguniform, uniform

BEST_LR = 3e-3


def lr_space(**more):
    return SearchSpace(ModelConfig(), learning_rate=loguniform(1e-5, 1.0), **more)


def mixed_space():
    return SearchSpace(
        ModelConfig(optimizer="adamw"),
        learning_rate=loguniform(1e-5, 1.0),
        weight_decay=uniform(0.0, 0.1),
        batch_size=[32, 64, 128],
        epochs=intrange(1, 40, log=True),
    )


class Planted:
    """Losses minimal at ``BEST_LR`` plus a small noise per (model, instance); counts calls per
    pair and may fail after ``fail_after`` calls."""

    def __init__(self, noise=0.01, fail_after=None, error=RuntimeError):
        self.noise, self.fail_after, self.error = noise, fail_after, error
        self.calls = 0
        self.pairs = collections.Counter()

    def __call__(self, model_ids, instances, configs):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise self.error("stopped on purpose")
        self.calls += 1
        self.pairs.update(zip(model_ids.tolist(), instances.tolist(), strict=True))
        lr = np.array([c.learning_rate for c in configs])
        noise = self.noise * np.sin(7.3 * instances + 1.7 * np.log(lr))
        return (np.log10(lr) - np.log10(BEST_LR)) ** 2 + noise


def comparable(result):
    """What two runs of one search must agree on (not the seconds)."""
    ledger = result.ledger.drop(columns=["seconds"])
    history = result.history.drop(columns=["seconds", "compile_seconds"])
    return ledger, history, result.path, result.iterations, result.configs, result.winners


def assert_same(a, b):
    for x, y in zip(comparable(a), comparable(b), strict=True):
        if isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y)
        else:
            assert x == y


# ---------------------------------------------------------------------------------- 1. ranges
def test_sampled_values_stay_inside_their_ranges():
    space = mixed_space()
    model = SamplingModel(space.parameters)
    rng = np.random.default_rng(0)
    first = sample_uniform(model, rng, 2000)
    lrs = np.log10([v["learning_rate"] for v in first])
    assert lrs.min() >= -5 and lrs.max() <= 0
    assert abs(np.median(lrs) + 2.5) < 0.15  # uniform in log space: the median at 10^-2.5
    epochs = np.array([v["epochs"] for v in first])
    assert epochs.dtype.kind == "i" and epochs.min() >= 1 and epochs.max() <= 40
    assert (epochs <= 6).mean() > 0.4  # log space: about as many in 1..6 as in 7..40
    values = dict(enumerate(first[:3]))
    for width in (2.0, 0.5, 1e-3):
        model.width = width
        for gid in values:
            model.probabilities[gid] = model.uniform_probabilities()
        for drawn, parent in sample_children(model, [0, 1, 2], values, rng, 300):
            assert parent in (0, 1, 2)
            assert 1e-5 <= drawn["learning_rate"] <= 1.0
            assert 0.0 <= drawn["weight_decay"] <= 0.1
            assert drawn["epochs"] in intrange(1, 40) and isinstance(drawn["epochs"], int)
            assert drawn["batch_size"] in (32, 64, 128)
    result = jrobust.search(space, budget=120, evaluator=Planted(), seed=3)
    for config in result.configs:
        assert 1e-5 <= config.learning_rate <= 1.0 and 0.0 <= config.weight_decay <= 0.1
        assert 1 <= config.epochs <= 40 and config.batch_size in (32, 64, 128)


def test_narrow_children_collapse_and_a_soft_restart_widens():
    space = lr_space(batch_size=[32, 64])
    model = SamplingModel(space.parameters, width=1e-5)
    values = {0: {"learning_rate": 1e-3, "batch_size": 32}}
    model.probabilities[0] = {"batch_size": np.array([1.0, 0.0])}
    rng = np.random.default_rng(0)
    children = [v for v, _ in sample_children(model, [0], values, rng, 8)]
    assert collapsed(model, children)
    model.soft_restart([0], 8)
    assert model.width == pytest.approx(1e-5 * 8**2)  # two iterations back (d = 1)
    assert model.probabilities[0]["batch_size"].tolist() == pytest.approx([1 / 1.1, 0.1 / 1.1])
    children = [v for v, _ in sample_children(model, [0], values, rng, 8)]
    assert not collapsed(model, children)
    model.width = 0.4
    model.soft_restart([0], 8)
    assert model.width == pytest.approx(0.5 / 8)  # at most the width of iteration 2


# ---------------------------------------------------------------------------------- 2. narrowing
def test_the_sampling_model_narrows_toward_a_planted_optimum():
    result = jrobust.search(lr_space(), budget=600, evaluator=Planted(), seed=0, iterations=4)
    distance = abs(np.log10(result.winner.learning_rate / BEST_LR))
    assert distance < 0.05 * 5  # within 5 % of the 5 decades of the range
    assert distance < 0.05  # in fact within 0.05 decades (about 12 %)
    its = result.iterations.set_index("iteration")
    assert np.isnan(its.width[1])  # the first iteration samples uniformly
    shrunk = [j for j in its.index[2:] if not its.restarted[j]]
    assert len(shrunk) >= 1
    for j in shrunk:  # every iteration narrows, but where the candidates collapsed (a restart)
        assert its.width[j] < its.width[j - 1] / 10
    # the candidates of the last iteration lie closer to the optimum than the first's
    frame = result.models
    spread = frame.groupby("iteration")["learning_rate"].apply(
        lambda s: np.median(np.abs(np.log10(s / BEST_LR)))
    )
    assert spread.iloc[-1] < spread.iloc[0] / 4


# ---------------------------------------------------------------------------------- 3. budget
@pytest.mark.parametrize("budget", [12, 31, 57, 100, 251])
def test_the_budget_is_never_exceeded(budget):
    planted = Planted()
    result = jrobust.search(lr_space(), budget=budget, evaluator=planted, seed=1, warmup=3)
    assert result.n_trainings <= budget
    assert sum(planted.pairs.values()) == result.n_trainings == len(result.ledger)
    assert int(result.history["trained"].sum()) == result.n_trainings


# ---------------------------------------------------------------------------------- 4. seeds
def test_a_search_is_deterministic_for_a_seed():
    a = jrobust.search(mixed_space(), budget=150, evaluator=Planted(), seed=5)
    b = jrobust.search(mixed_space(), budget=150, evaluator=Planted(), seed=5)
    assert_same(a, b)
    c = jrobust.search(mixed_space(), budget=150, evaluator=Planted(), seed=6)
    assert c.configs[0] != a.configs[0]
    assert [m.learning_rate for m in c.configs] != [m.learning_rate for m in a.configs]


# ---------------------------------------------------------------------------------- 5. resume
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_interrupted_search_resumes_to_the_same_result(tmp_path, error):
    counted = Planted()
    whole = jrobust.search(mixed_space(), budget=200, evaluator=counted, seed=2)
    assert len(set(whole.history["iteration"])) >= 3
    first = int((whole.history["iteration"] == 1).sum())
    for stop in (2, first + 3, counted.calls - 1):  # in the first, second and last iteration
        folder = tmp_path / f"{error.__name__}{stop}"
        with pytest.raises(error):
            jrobust.search(
                mixed_space(),
                budget=200,
                evaluator=Planted(fail_after=stop, error=error),
                seed=2,
                checkpoint_dir=folder,
            )
        assert (folder / "search.npz").exists()
        again = Planted()
        resumed = jrobust.search(
            mixed_space(), budget=200, evaluator=again, seed=2, checkpoint_dir=folder
        )
        assert_same(whole, resumed)
        # what was trained before the interruption is not trained again
        assert sum(again.pairs.values()) < whole.n_trainings
        assert resumed.n_trainings == whole.n_trainings
    with pytest.raises(ValueError, match="different search"):
        jrobust.search(
            mixed_space(), budget=201, evaluator=Planted(), seed=2, checkpoint_dir=folder
        )


# ---------------------------------------------------------------------------------- 6. elites
def test_elites_keep_their_instances():
    planted = Planted()
    result = jrobust.search(lr_space(), budget=400, evaluator=planted, seed=4, iterations=4)
    assert max(planted.pairs.values()) == 1  # every (model, instance) trained once
    path = result.path
    carried = path.groupby("model_id")["iteration"].nunique()
    assert (carried > 1).any()  # some elite raced in several iterations
    assert int(result.history["reused"].sum()) > 0
    ledger = result.ledger
    for model_id in carried[carried > 1].index:
        # its warm-up instances, raced again in every later iteration, were trained in its first
        rows = ledger[(ledger.model_id == model_id) & (ledger.instance < 3)]
        assert len(rows) == 3
        assert (rows.iteration == path[path.model_id == model_id].iteration.min()).all()
    # the ledger has each pair once, in the iteration that trained it
    assert not result.ledger.duplicated(["model_id", "instance"]).any()


# ---------------------------------------------------------------------------------- 9. bad input
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(budget=5), "budget=5 is below what one iteration needs.*budget >= 12"),
        (dict(budget=100.0), "budget must be an integer"),
        (dict(budget="100"), "budget must be an integer"),
        (dict(budget=100, iterations=0), "iterations must be an integer >= 1"),
        (dict(budget=100, elites=0), "elites must be an integer >= 1"),
        (dict(budget=100, first_candidates=1), "first_candidates must be an integer >= 2"),
        (dict(budget=100, n_winners=2), "does not take the race setting n_winners"),
    ],
)
def test_bad_input_is_refused_with_one_line(kwargs, match):
    planted = Planted()
    with pytest.raises(CheckError, match=match) as err:
        jrobust.search(lr_space(), evaluator=planted, **kwargs)
    assert "\n" not in str(err.value)
    assert planted.calls == 0


def test_a_space_without_parameters_is_refused():
    with pytest.raises(CheckError, match="no ranges and no choices") as err:
        jrobust.search(SearchSpace(ModelConfig()), budget=100, evaluator=Planted())
    assert "\n" not in str(err.value)


def test_a_finite_space_is_searched_over_its_choices():
    space = SearchSpace(ModelConfig(), learning_rate=[1e-4, 1e-3, 3e-3, 1e-2, 1e-1])
    result = jrobust.search(space, budget=200, evaluator=Planted(noise=0.001), seed=0)
    assert result.winner.learning_rate == 3e-3
    assert len(set(result.configs)) == len(result.configs)  # no model sampled twice


# ---------------------------------------------------------------------------------- 10. result
def test_the_result_tables_follow_the_contract():
    space = mixed_space()
    result = jrobust.search(space, budget=200, evaluator=Planted(), seed=7)
    its = result.iterations
    assert tuple(its.columns) == ITERATION_COLUMNS
    n_iter = its.iteration.nunique()
    assert len(its) == n_iter * len(space.parameters)
    assert list(its.iteration.unique()) == list(range(1, n_iter + 1))
    assert list(its.parameter[its.iteration == 1]) == list(space.parameters)
    kinds = dict(zip(its.parameter, its.kind, strict=False))
    assert kinds == {
        "learning_rate": "float",
        "weight_decay": "float",
        "batch_size": "categorical",
        "epochs": "int",
    }
    logs = dict(zip(its.parameter, its.log, strict=False))
    assert logs == {
        "learning_rate": True,
        "weight_decay": False,
        "batch_size": False,
        "epochs": True,
    }
    assert its[its.kind == "categorical"].width.isna().all()
    assert its.restarted.dtype == bool
    # every sampled candidate, once, in the order sampled
    sampled = [int(g) for s in its.drop_duplicates("iteration").candidates for g in s.split(",")]
    assert sampled == list(range(len(result.configs)))
    for j, row in its.drop_duplicates("iteration").set_index("iteration").iterrows():
        elites = [int(e) for e in row.elites.split(",")]
        last_round = result.path[result.path.iteration == j]["round"].max()
        alive = result.path[(result.path["round"] == last_round) & result.path.alive]
        assert set(elites) <= set(alive.model_id)
    # the centre of a range is the best elite's value after the iteration
    last = its[its.iteration == n_iter].set_index("parameter")
    assert last.loc["learning_rate", "centre"] == result.winner.learning_rate
    assert last.loc["epochs", "centre"] == result.winner.epochs
    assert last.loc["batch_size", "centre"] in ("32", "64", "128")
    # global ids, iteration columns, rounds that continue
    for table in (result.ledger, result.history, result.path):
        assert "iteration" in table.columns
    rounds = result.history["round"].to_numpy()
    assert (rounds == np.arange(1, len(rounds) + 1)).all()
    assert (np.diff(result.history["iteration"].to_numpy()) >= 0).all()
    assert result.path["model_id"].max() < len(result.configs)
    # the winner: a model of the space, the best of the last elites
    assert isinstance(result.winner, ModelConfig)
    values = result.models.set_index("model_id").loc[result.winner_id]
    assert result.winner == space.config_of({p: values[p] for p in space.parameters})
    assert result.winner_id == result.winners[0]
    assert result.winners == [int(e) for e in last.elites.iloc[0].split(",")]
    assert result.summary().model_id.iloc[0] == result.winner_id


def test_a_race_leaves_iterations_none():
    result = jrobust.race(4, evaluator=lambda m, i: m + 0.1 * np.sin(i), warmup=3)
    assert result.iterations is None


def test_progress_can_stop_a_search():
    seen = []

    def progress(info):
        seen.append(info)
        if info["iteration"] == 2:
            raise jrobust.StopRace

    result = jrobust.search(lr_space(), budget=300, evaluator=Planted(), progress=progress)
    assert result.timing["stop_reason"] == "stopped" and not result.finished
    assert seen[-1]["iteration"] == 2 and set(result.history.iteration) == {1, 2}


# ---------------------------------------------------------------------------------- 7, 8. engine
def engine_space():
    base = jrobust.zoo.mlp_config(
        hidden=(8,), optimizer="adamw", train_size=200, batch_size=20, epochs=1, target="energy"
    )
    return SearchSpace(
        base,
        learning_rate=loguniform(1e-3, 1e-1),
        weight_decay=loguniform(1e-5, 1e-2),
        hidden=intrange(4, 12),
    )


def test_the_engine_compiles_once_per_search_and_matches_one_at_a_time(toy_population):
    from jrobust._src.train import n_compiled

    compiled = {}

    def progress(info):
        compiled[info["iteration"]] = n_compiled()

    result = jrobust.search(
        engine_space(),
        toy_population,
        budget=90,
        seed=0,
        iterations=3,
        elites=2,
        first_candidates=6,
        warmup=2,
        progress=progress,
    )
    its = result.iterations
    assert its.iteration.nunique() == 3
    # every iteration sampled new learning rates, weight decays and widths
    for p in ("learning_rate", "weight_decay", "hidden"):
        assert result.models.groupby("iteration")[p].nunique().min() >= 2
    assert set(result.models.hidden) > {result.models.hidden.iloc[0]}
    assert compiled[1] == compiled[3]  # nothing compiled after the first iteration
    assert result.timing["n_planned_programs"] == 1
    assert result.n_trainings <= 90
    # common random numbers: the search's losses are those of the model trained alone
    winner = result.winner_id
    ledger = result.instance_ledger()
    rows = ledger[ledger.model_id == winner].sort_values("instance")
    alone = jrobust.train_instances(
        result.configs[winner], toy_population, rows.instance.to_numpy(), seed=0
    )
    np.testing.assert_allclose(rows.loss.to_numpy(), alone.loss.to_numpy(), rtol=2e-5)


def test_the_engine_refuses_a_model_no_planned_program_holds(toy_population):
    from jrobust._src.engine import Engine
    from jrobust._src.search.iterate import every_variant
    from jrobust._src.settings import Execution

    space = engine_space()
    variants = every_variant(space)
    assert sorted(v.architecture.hidden for v in variants) == [(w,) for w in range(4, 13)]
    engine = Engine([], toy_population, Execution(merge="max"), 0, variants=variants)
    assert len(engine.plans) == 1
    ids = engine.add(space.sample(3, seed=0))
    assert ids.tolist() == [0, 1, 2]
    wide = space.config_of({"learning_rate": 1e-2, "weight_decay": 1e-3, "hidden": 12})
    outside = jrobust.zoo.mlp_config(
        hidden=(13,), optimizer="adamw", train_size=200, batch_size=20, epochs=1, target="energy"
    )
    assert engine.add([wide]).tolist() == [3]
    with pytest.raises(ValueError, match="fits none of the engine's planned programs"):
        engine.add([outside])
    assert len(engine.configs) == 4


def test_a_merged_lane_starts_from_exactly_its_narrow_models_parameters():
    """The merged model draws each kernel once, flat, at the longest length (so its compile does
    not grow with the widths); each lane's block is exactly its narrow model's draw."""
    import jax

    from jrobust._src.models.contract import init_leaf
    from jrobust._src.models.merged import MergedModel

    archs = [
        (jrobust.zoo.cnn_config(conv=(w, w + 1), pool=(2, 2), dense=(w + 2,)).architecture, False)
        for w in (2, 3, 5)
    ]
    model = MergedModel.build(archs, (14, 14, 1), 0)
    key = jax.random.key(11)
    for v, leaves in enumerate(model.leaves):
        params = model.init(key, v)
        masks = model.masks(v)
        for leaf in leaves:
            block = np.asarray(params[leaf.wide])[leaf.index()]
            np.testing.assert_array_equal(
                block, np.asarray(init_leaf(key, leaf.narrow, leaf.shape))
            )
        for path, value in params.items():  # nothing outside the lane's own parameters
            np.testing.assert_array_equal(np.asarray(value) * (1 - np.asarray(masks[path])), 0.0)
