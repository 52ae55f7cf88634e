"""The race on real published results: 20 instances of each of 192 CCT configurations trained on
CIFAR-10 subsets by the method's authors (CHEP 2026; tests/data/cct_instances.README.md), raced
through a lookup evaluator."""

import itertools
import pathlib

import numpy as np
import pandas as pd
import pytest

import jrobust
from jrobust._src.rules import halving_trainings

DATA = pathlib.Path(__file__).parent / "data" / "cct_instances.csv"


@pytest.fixture(scope="module")
def errors():
    frame = pd.read_csv(DATA)
    assert frame.shape == (192, 76)
    return 1.0 - frame[[f"acc_{i}" for i in range(1, 21)]].to_numpy()


def lookup(errors, calls=None):
    def evaluate(models, instances):
        if calls is not None:
            calls.append((models.copy(), instances.copy()))
        return errors[models, instances]

    return evaluate


def test_halving_finds_the_best_configuration_with_a_quarter_of_the_trainings(errors):
    calls = []
    result = jrobust.race(
        192,
        evaluator=lookup(errors, calls),
        statistic="mean",
        rule="halving",
        warmup=3,
        max_instances=20,
    )
    exhaustive_best = int(np.argmin(errors.mean(axis=1)))
    assert result.winner_id == exhaustive_best
    assert result.n_trainings == halving_trainings(192, 3) == 959  # of 3840 for the full grid
    assert result.history.remaining.tolist() == [192, 96, 48, 24, 12, 6, 3, 2, 1]
    # the ledger holds exactly the looked-up values, each instance asked for once
    pairs = np.concatenate([np.stack(c, 1) for c in calls])
    assert len({tuple(p) for p in pairs}) == len(pairs) == result.n_trainings
    np.testing.assert_array_equal(
        result.ledger.loss, errors[result.ledger.model_id, result.ledger.instance]
    )


def test_welch_race_shrinks_like_the_talk_and_keeps_the_best(errors):
    result = jrobust.race(
        192,
        evaluator=lookup(errors),
        statistic="mean",
        rule="welch",
        alpha=0.05,
        warmup=2,
        patience=3,
        max_instances=20,
    )
    remaining = result.history.remaining.tolist()
    assert remaining[0] == 192 and remaining[1] < 192 / 3  # most leave at the first test
    assert all(a >= b for a, b in itertools.pairwise(remaining))
    assert result.winner_id == int(np.argmin(errors.mean(axis=1)))
    assert result.n_trainings < errors.size / 4


def test_spread_statistic_picks_a_narrow_configuration_from_the_top(errors):
    result = jrobust.race(
        192,
        evaluator=lookup(errors),
        statistic="std",
        rank_by="mean",
        rule="halving",
        warmup=3,
        max_instances=20,
    )
    ranking = list(np.argsort(errors.mean(axis=1)))
    assert ranking.index(result.winner_id) < 192 * 0.05  # in the top 5 % by mean accuracy
    winner_std = errors[result.winner_id].std(ddof=1)
    assert winner_std < np.median(errors.std(axis=1, ddof=1))
