"""A race driven from outside: ask and tell give exactly the race an evaluator gives."""

import numpy as np
import pandas as pd
import pytest

import jrobust
from jrobust._src import presets as zoo
from jrobust._src.race.checkpoint import CheckpointMismatch


def planted(model_ids, instances, train_sizes=None):
    """Losses with a known structure: model m has level 1 + m/20 and spread (m % 5 + 1) / 10,
    instance i its own noise (common to every model: paired); larger sizes are better."""
    m = np.asarray(model_ids, float)
    i = np.asarray(instances, float)
    noise = np.sin(12.9898 * i + 78.233 * (m % 3)) * 0.5
    size = 1.0 if train_sizes is None else 1000.0 / np.asarray(train_sizes, float)
    return (1.0 + m / 20.0) * size + (m % 5 + 1) / 10.0 * noise


def drive(race: jrobust.Race, evaluate=planted):
    rounds = 0
    while (work := race.ask()) is not None:
        args = (work.model_ids, work.instances)
        if work.train_sizes is not None:
            args += (work.train_sizes,)
        race.tell(work, evaluate(*args))
        rounds += 1
    return race.result(), rounds


SETTINGS = {
    "halving": dict(rule="halving", statistic="std", rank_by="mean", warmup=3),
    "a test": dict(rule="wilcoxon", alpha=0.2, warmup=6, max_instances=12),
    "fidelity": dict(
        rule="halving", fidelity=(100, 400, 1600), n_winners=2, final_instances=4, elites=1
    ),
}


@pytest.mark.parametrize("kind", SETTINGS)
def test_ask_and_tell_give_the_ledger_and_winner_of_race_with_an_evaluator(kind):
    settings = SETTINGS[kind]
    reference = jrobust.race(24, evaluator=planted, **settings)
    result, rounds = drive(jrobust.Race(24, **settings))
    assert rounds == len(reference.history) > 1
    pd.testing.assert_frame_equal(result.ledger.drop(columns="seconds"),
                                  reference.ledger.drop(columns="seconds"))  # fmt: skip
    pd.testing.assert_frame_equal(result.path, reference.path)
    assert result.winners == reference.winners and result.finished
    assert result.stages == reference.stages


def test_a_race_saved_and_loaded_between_two_asks_continues_to_the_same_ledger(tmp_path):
    settings = SETTINGS["fidelity"]
    reference, _ = drive(jrobust.Race(24, **settings))
    race = jrobust.Race(24, **settings)
    for _ in range(3):
        work = race.ask()
        race.tell(work, planted(work.model_ids, work.instances, work.train_sizes))
    race.ask()  # asked but not told: the work is not part of the state
    race.save(tmp_path)
    back = jrobust.Race.load(tmp_path)
    assert back.state.round == 3 and back.key == race.key
    result, _ = drive(back)
    pd.testing.assert_frame_equal(result.ledger, reference.ledger)
    assert result.winners == reference.winners


def test_a_saved_race_of_zoo_models_loads_without_its_space(tmp_path):
    space = jrobust.SearchSpace(zoo.mlp_config(hidden=(8,)), learning_rate=[1e-3, 1e-2, 1e-1])
    race = jrobust.Race(space, warmup=2)
    work = race.ask()
    race.tell(work, planted(work.model_ids, work.instances))
    race.save(tmp_path)
    back = jrobust.Race.load(tmp_path)
    assert back.configs == space.models and list(back.models.name) == space.names()
    with pytest.raises(CheckpointMismatch, match="different race"):
        jrobust.Race.load(tmp_path, space=space, settings=dict(warmup=3))


def test_tell_refuses_work_that_was_not_asked_and_losses_that_do_not_fit():
    race = jrobust.Race(4, warmup=2)
    with pytest.raises(ValueError, match="call ask"):
        race.tell(jrobust.Race(4).ask(), np.ones(8))
    work = race.ask()
    again = race.ask()
    assert np.array_equal(work.model_ids, again.model_ids)  # asking twice: the same work
    work.model_ids[0] = 3  # a copy: the race's own work is unchanged
    with pytest.raises(ValueError, match="not what ask"):
        race.tell(work, np.ones(8))
    with pytest.raises(ValueError, match="tell\\(\\) got 3 losses for 8 instances"):
        race.tell(again, np.ones(3))
    with pytest.raises(TypeError, match="must be given real numbers, one per instance"):
        race.tell(again, ["a"] * 8)
    report = race.tell(again, np.arange(8.0))
    assert report.round == 1 and report.trained == 8 and not report.removed


def test_a_round_report_says_who_left_and_why():
    race = jrobust.Race(8, rule="halving", statistic="mean", warmup=1, max_instances=3)
    race.tell(race.ask(), np.arange(8.0))
    work = race.ask()
    report = race.tell(work, planted(work.model_ids, work.instances))
    assert set(report.removed.values()) == {"rule"} and len(report.removed) == 4
    assert not race.state.alive[list(report.removed)].any()
