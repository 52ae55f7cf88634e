"""Optuna as a front end (jrobust.integrations.optuna): each trial is told the statistic of its
own instances, trained together and equal to the same instances trained alone; two directions
get a level and a spread; WilcoxonPruner stops the trials it prunes; a seeded study repeats;
bad input is refused before anything compiles. Skipped when Optuna is not installed, except
the check of the error that says how to install it."""

import importlib
import sys
import warnings

import numpy as np
import pytest

import jrobust

BRIDGE = "jrobust._src.integrations.optuna"
INSTANCES = 3


@pytest.fixture
def optuna():
    module = pytest.importorskip("optuna")
    module.logging.set_verbosity(module.logging.WARNING)
    return module


@pytest.fixture
def bridge(optuna):
    return importlib.import_module(BRIDGE)


@pytest.fixture
def counted(bridge, monkeypatch):
    """The bridge's engine, recording the lanes of every work list it trains."""
    calls: list[list[tuple[int, int]]] = []

    class Counting(bridge.Engine):
        def __call__(self, work):
            calls.append(list(zip(work.model_ids.tolist(), work.instances.tolist(), strict=True)))
            return super().__call__(work)

    monkeypatch.setattr(bridge, "Engine", Counting)
    return calls


def mlp(learning_rate=1e-2, hidden=(8,), **kw):
    base = dict(train_size=200, batch_size=20, epochs=2, target="energy")
    return jrobust.zoo.mlp_config(hidden=hidden, learning_rate=learning_rate, **{**base, **kw})


def make_config(trial):
    """A learning rate (a scalar: lanes of one program) and a width (merged programs)."""
    return mlp(
        learning_rate=trial.suggest_float("learning_rate", 1e-3, 1e-1, log=True),
        hidden=(trial.suggest_categorical("width", [6, 8]),),
    )


def as_worst(losses):
    """A trial's ``instance_losses`` attribute as the statistics see it (failed: +inf)."""
    return np.array([np.inf if v is None else v for v in losses], np.float64)


def alone(trial, population, seed=0):
    """The trial's instances trained one model at a time (``jrobust.train_instances``)."""
    rows = jrobust.train_instances(make_config(trial), population, trial.user_attrs["instances"],
                                   seed=seed)  # fmt: skip
    return rows["loss"].to_numpy()


def test_without_optuna_the_import_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # ``import optuna`` fails as if absent
    for name in (BRIDGE, "jrobust.integrations.optuna"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(ImportError) as info:
        importlib.import_module("jrobust.integrations.optuna")
    message = str(info.value)
    assert 'pip install "jrobust[optuna]"' in message and "\n" not in message


def test_each_trial_is_told_the_statistic_of_its_own_instances(
    optuna, bridge, counted, toy_population
):
    study = optuna.create_study(
        sampler=optuna.samplers.RandomSampler(seed=1), pruner=optuna.pruners.NopPruner()
    )
    trials = bridge.optimize(
        study, make_config, toy_population, n_trials=4, batch=3, instances=INSTANCES, seed=5
    )
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    # a batch is ONE work list: every instance of every trial (the last batch is smaller)
    assert [len(c) for c in counted] == [3 * INSTANCES, 1 * INSTANCES]
    assert {t.params["width"] for t in trials} == {6, 8}  # two programs' lanes
    for trial in trials:
        assert trial.user_attrs["instances"] == list(range(INSTANCES))
        assert trial.user_attrs["statistic"] == ["max"]  # the race's default statistic
        losses = as_worst(trial.user_attrs["instance_losses"])
        assert trial.value == pytest.approx(jrobust.get_statistic("max")(losses[None])[0])
        # stacked with the other trials == the trial's model trained alone, instance by instance
        np.testing.assert_allclose(losses, alone(trial, toy_population, seed=5), rtol=1e-5)


@pytest.mark.parametrize("statistic", [None, ("median", "pd")])
def test_a_study_with_two_directions_is_told_a_level_and_a_spread(
    optuna, bridge, toy_population, statistic
):
    study = optuna.create_study(
        directions=["minimize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=2)
    )
    trials = bridge.optimize(
        study, make_config, toy_population, n_trials=3, batch=3, instances=4, statistic=statistic
    )
    names = ["mean", "std"] if statistic is None else list(statistic)
    for trial in trials:
        assert trial.user_attrs["statistic"] == names
        losses = as_worst(trial.user_attrs["instance_losses"])
        expected = [jrobust.get_statistic(n)(losses[None])[0] for n in names]
        np.testing.assert_allclose(trial.values, expected, rtol=1e-12)
    assert study.best_trials  # a Pareto front of level and spread


def test_wilcoxon_pruner_stops_the_trials_it_prunes(optuna, bridge, counted, toy_population):
    """Two good learning rates complete first; two that hardly train are worse on every
    instance, so the one-sided Wilcoxon test's exact p-value after n pairs is 2**-n: the pruner
    (p_threshold=0.1) prunes them after 4 instances (1/16 < 0.1 <= 1/8), of 8."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        pruner = optuna.pruners.WilcoxonPruner(p_threshold=0.1)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), pruner=pruner)
    for lr in (3e-2, 1e-2, 1e-7, 1e-7):
        study.enqueue_trial({"learning_rate": lr})

    def make(trial):  # the enqueued learning rates lie outside make_config's range
        return mlp(learning_rate=trial.suggest_float("learning_rate", 1e-8, 1e-1, log=True))

    trials = bridge.optimize(study, make, toy_population, n_trials=4, batch=2, instances=8)
    states = [t.state for t in trials]
    done, pruned = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED
    assert states == [done, done, pruned, pruned]
    trained = [len(t.user_attrs["instances"]) for t in trials]
    assert trained == [8, 8, 4, 4]
    # the engine trained exactly these instances: a pruned trial stops training
    lanes = [lane for call in counted for lane in call]
    assert len(lanes) == sum(trained) == 24
    # one work list per instance index of the live trials: 8 of the first batch, 4 of the second
    assert [len(call) for call in counted] == [2] * 8 + [2] * 4
    for trial in trials:
        # each instance's loss reported at the step of its instance index, as WilcoxonPruner pairs
        reported = trial.intermediate_values
        assert sorted(reported) == sorted(trial.user_attrs["instances"])
        for index, loss in zip(
            trial.user_attrs["instances"], trial.user_attrs["instance_losses"], strict=True
        ):
            assert reported[index] == pytest.approx(loss)
    # the pruned trials trained the batch's first 4 indices of a shuffled order (not 0..3)
    assert trials[2].user_attrs["instances"] == trials[3].user_attrs["instances"]


def test_a_seeded_tpe_study_in_memory_is_deterministic(optuna, bridge, toy_population):
    def make(trial):
        return mlp(learning_rate=trial.suggest_float("learning_rate", 1e-3, 1e-1, log=True))

    def run():
        study = optuna.create_study(
            storage=optuna.storages.InMemoryStorage(),
            sampler=optuna.samplers.TPESampler(seed=3, n_startup_trials=2),
            pruner=optuna.pruners.NopPruner(),
        )
        bridge.optimize(study, make, toy_population, n_trials=4, batch=2, instances=2)
        return [(t.params, t.value, t.user_attrs) for t in study.trials]

    first, second = run(), run()
    assert first == second
    assert len({first[i][1] for i in range(4)}) == 4  # four different trials, not one repeated


def test_failed_instances_count_as_the_worst_value(optuna, bridge, toy_population):
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    study.enqueue_trial({"learning_rate": 1e6})

    def diverging(trial):
        lr = trial.suggest_float("learning_rate", 1e-3, 1e7, log=True)
        return mlp(learning_rate=lr, optimizer="sgd")

    (trial,) = bridge.optimize(
        study, diverging, toy_population, n_trials=1, batch=1, instances=2, statistic="min"
    )
    assert trial.user_attrs["instance_losses"] == [None, None]
    assert trial.value == np.inf and trial.state == optuna.trial.TrialState.COMPLETE


def _bad_make_config(trial):
    trial.suggest_float("learning_rate", 1e-3, 1e-1)
    return {"learning_rate": 1e-2}


def _too_big(trial):
    return mlp(train_size=5_000)  # the toy population's pool holds 900 events


BAD = {
    "batch": (dict(batch=0), "batch must be a positive integer"),
    "n_trials": (dict(n_trials=0), "n_trials must be a positive integer"),
    "maximize": (dict(direction="maximize"), "direction='minimize'"),
    "no spread": (dict(directions=2, statistic="mean"), r"statistic=\('mean', 'std'\)"),
    "one instance": (dict(directions=2, instances=1), "at least 2 instances"),
    "statistic": (dict(statistic="avg"), "statistic"),
    "instances": (dict(instances=[1, 1]), "distinct instance indices"),
    "prune 2 directions": (dict(directions=2, prune=True), "several directions"),
    "prune no pruner": (dict(prune=True), "NopPruner"),
    "execution": (dict(max_bukcet=4), "unexpected keyword argument"),
    "population": (dict(population=np.zeros(4)), "population must be a jrobust.Population"),
    "not a config": (dict(make_config=_bad_make_config), "must return a jrobust.ModelConfig"),
    "does not fit": (dict(make_config=_too_big), "trial 0: .*does not fit the data"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_refused_before_anything_compiles(
    optuna, bridge, monkeypatch, toy_population, case
):
    kwargs, message = BAD[case]
    kwargs = dict(kwargs)

    def no_engine(*args, **kw):
        raise AssertionError("the engine was built: the check came too late")

    monkeypatch.setattr(bridge, "Engine", no_engine)
    directions = kwargs.pop("directions", 1)
    direction = kwargs.pop("direction", "minimize")
    study = optuna.create_study(
        directions=[direction] * directions, pruner=optuna.pruners.NopPruner()
    )
    args = dict(make_config=make_config, population=toy_population, n_trials=2, batch=2)
    args.update(kwargs)
    with pytest.raises(jrobust._src.checks.CheckError, match=message) as info:
        bridge.optimize(study, args.pop("make_config"), args.pop("population"), **args)
    assert "\n" not in str(info.value)
    # nothing is left running: a batch whose models were refused is told FAIL
    assert all(t.state == optuna.trial.TrialState.FAIL for t in study.trials)


def test_a_bad_model_in_a_later_batch_keeps_the_earlier_trials(optuna, bridge, toy_population):
    def make(trial):
        return make_config(trial) if trial.number < 2 else _too_big(trial)

    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    with pytest.raises(ValueError, match="trial 2: .*does not fit the data"):
        bridge.optimize(study, make, toy_population, n_trials=4, batch=2, instances=2)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "COMPLETE", "FAIL", "FAIL"]
    assert all(len(t.user_attrs["instance_losses"]) == 2 for t in study.trials[:2])
