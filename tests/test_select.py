"""The race: counts, rules, determinism, resume and bad input, with synthetic and real evaluators."""

import numpy as np
import pytest
import scipy.stats
from conftest import stop_after

import jrobust
from jrobust._src import presets as zoo
from jrobust._src.rules import RULES, halving_trainings


def gaussian_evaluator(mu, sigma, calls=None):
    """Losses mu[m] + sigma[m] * z(m, i) with z a fixed normal draw per (model, instance)."""

    def evaluate(models, instances):
        if calls is not None:
            calls.append(len(models))
        z = np.array(
            [
                np.random.default_rng([7, m, i]).standard_normal()
                for m, i in zip(models, instances, strict=True)
            ]
        )
        return np.asarray(mu)[models] + np.asarray(sigma)[models] * z

    return evaluate


@pytest.mark.parametrize("n_models", [2, 4, 8, 16, 3, 5, 6, 7, 12])
@pytest.mark.parametrize("warmup", [2, 3, 5])
def test_halving_training_count(n_models, warmup):
    ev = gaussian_evaluator(np.linspace(1, 2, n_models), np.linspace(0.1, 0.5, n_models))
    result = jrobust.race(n_models, evaluator=ev, statistic="mean", rule="halving", warmup=warmup)
    assert result.n_trainings == halving_trainings(n_models, warmup) == len(result.ledger)
    if n_models & (n_models - 1) == 0:  # powers of two: the paper's (k + 2) M - 2
        assert result.n_trainings == (warmup + 2) * n_models - 2
    # odd counts keep their median model: survivors go M -> ceil(M/2) -> ... -> 1
    survivors = result.history.survivors.tolist()
    assert survivors[0] == n_models and result.history.remaining.iloc[-1] == 1
    for before, after in zip(
        result.history.survivors.iloc[1:], result.history.remaining.iloc[1:], strict=True
    ):
        assert after == -(-before // 2)


PLANTED = 3
MU = np.array([1.30, 1.20, 1.25, 1.00, 1.40, 1.10, 1.35, 1.15, 1.22, 1.28])
SIGMA = np.array([0.30, 0.25, 0.20, 0.05, 0.35, 0.30, 0.15, 0.22, 0.28, 0.18])


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("statistic", ["mean", "std", "pd", "median", "q3+iqr"])
def test_planted_winner_wins_under_every_rule(rule, statistic):
    if rule == "threshold":  # a cut between the planted model's statistic and the others'
        cut = {"mean": 1.1, "median": 1.1, "q3+iqr": 1.25}.get(statistic, 0.1)
        rule_obj = jrobust.get_rule("threshold", value=cut)
    else:
        rule_obj = rule
    result = jrobust.race(
        10,
        evaluator=gaussian_evaluator(MU, SIGMA),
        statistic=statistic,
        rule=rule_obj,
        warmup=max(4, jrobust.get_rule(rule_obj).min_warmup),
        max_instances=30,
    )
    assert result.winner_id == PLANTED


def test_spread_rules_remove_a_good_but_wide_model():
    mu = np.array([1.00, 1.05, 1.20, 1.30])  # model 0: best on average, but wide
    sigma = np.array([0.40, 0.02, 0.05, 0.05])
    ev = gaussian_evaluator(mu, sigma)
    by_mean = jrobust.race(
        4, evaluator=ev, statistic="mean", rule="halving", warmup=12, max_instances=30
    )
    by_std = jrobust.race(
        4, evaluator=ev, statistic="std", rule="halving", warmup=12, max_instances=30
    )
    by_pd = jrobust.race(
        4, evaluator=ev, statistic="pd", rule="quantile", warmup=12, max_instances=30
    )
    levene = jrobust.race(
        4,
        evaluator=ev,
        statistic="std",
        rule="levene",
        alpha=0.05,
        warmup=12,
        max_instances=30,
        n_winners=1,
    )
    assert by_mean.winner_id == 0
    assert (
        by_std.winner_id == 1 and 0 in by_std.history.eliminated.iloc[1]
    )  # first elimination round
    assert 0 in by_pd.history.eliminated.iloc[1]
    assert 0 in removed(levene) and levene.winner_id != 0
    assert 0 not in removed(by_mean)


def removed(result):
    return {m for ids in result.history.eliminated for m in ids}


def test_test_rule_eliminations_match_scipy():
    mu = np.array([1.0, 1.02, 1.5, 1.1, 2.0, 1.01])
    sigma = np.full(6, 0.1)
    result = jrobust.race(
        6,
        evaluator=gaussian_evaluator(mu, sigma),
        statistic="mean",
        rule="welch",
        alpha=0.05,
        warmup=5,
        max_instances=8,
        patience=2,
    )
    assert result.history.eliminated.iloc[0] == []  # the warm-up round removes nothing
    first = result.history.iloc[1]
    samples = {m: result.losses(m)[:6] for m in range(6)}
    best = int(np.argmin([samples[m].mean() for m in range(6)]))
    expected = [
        m
        for m in range(6)
        if m != best
        and scipy.stats.ttest_ind(samples[m], samples[best], equal_var=False).pvalue < 0.05
        and samples[m].mean() > samples[best].mean()
    ]
    assert sorted(first.eliminated) == expected and len(expected) >= 2


@pytest.mark.parametrize("rule", ["halving", "quantile", "welch", "levene", "mannwhitney"])
def test_diverging_model_never_wins(rule):
    mu = np.array([0.5, 1.0, 1.1, 1.2])  # model 0 would win, but one of its instances diverges
    sigma = np.full(4, 0.05)
    good = gaussian_evaluator(mu, sigma)

    def ev(models, instances):
        out = good(models, instances)
        out[(models == 0) & (instances == 1)] = np.nan
        return out

    result = jrobust.race(4, evaluator=ev, statistic="mean", rule=rule, warmup=3, max_instances=10)
    assert result.winner_id != 0
    failed = result.ledger.query("model_id == 0 and instance == 1")
    assert (failed.status == "failed").all()


def test_exhaustive_fills_the_grid():
    result = jrobust.exhaustive(
        5, evaluator=gaussian_evaluator(MU[:5], SIGMA[:5]), instances=7, statistic="mean"
    )
    assert len(result.ledger) == 35 == result.n_trainings
    assert set(zip(result.ledger.model_id, result.ledger.instance, strict=True)) == {
        (m, i) for m in range(5) for i in range(7)
    }
    assert result.winner_id == PLANTED


def test_budget_and_n_winners():
    ev = gaussian_evaluator(MU, SIGMA)
    result = jrobust.race(10, evaluator=ev, statistic="mean", rule="halving", warmup=3, budget=45)
    assert result.n_trainings <= 45 and result.timing["stop_reason"] == "budget"
    top3 = jrobust.race(10, evaluator=ev, statistic="mean", rule="halving", warmup=3, n_winners=3)
    assert len(top3.winners) == 3 and top3.winners[0] == PLANTED


def test_same_seed_same_ledger_and_resume(tmp_path):
    ev = gaussian_evaluator(MU, SIGMA)
    full = jrobust.race(10, evaluator=ev, statistic="std", rule="halving", warmup=3)
    again = jrobust.race(10, evaluator=ev, statistic="std", rule="halving", warmup=3)
    assert full.ledger.drop(columns="seconds").equals(again.ledger.drop(columns="seconds"))
    ckpt = tmp_path / "run"
    part = jrobust.race(
        10,
        evaluator=ev,
        statistic="std",
        rule="halving",
        warmup=3,
        checkpoint_dir=ckpt,
        progress=stop_after(2),
    )
    assert len(part.history) == 2 and (ckpt / "checkpoint.npz").exists() and not part.finished
    calls = []
    resumed = jrobust.race(
        10,
        evaluator=gaussian_evaluator(MU, SIGMA, calls),
        statistic="std",
        rule="halving",
        warmup=3,
        checkpoint_dir=ckpt,
    )
    assert sum(calls) == full.n_trainings - part.n_trainings  # nothing trained twice
    assert resumed.winner_id == full.winner_id
    assert resumed.ledger.drop(columns="seconds").equals(full.ledger.drop(columns="seconds"))
    with pytest.raises(ValueError, match="belongs to a different race"):
        jrobust.race(
            10, evaluator=ev, statistic="mean", rule="halving", warmup=3, checkpoint_dir=ckpt
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(rule="welch", warmup=1), "warmup=1 is too small"),
        (dict(rule="welch", alpha=1.5), "alpha"),
        (dict(rule="welch", alpha=0.0), "alpha"),
        (
            dict(rule="halving", warmup=5, max_instances=4),
            "max_instances=4 is smaller than warmup=5",
        ),
        (dict(rule="nope"), "unknown rule"),
        (dict(statistic="nope"), "nope"),
        (dict(rule="halving", alpha=0.05), "alpha applies to the test rules"),
        (
            dict(budget=11, warmup=3),
            r"budget=11 trainings cannot cover the warm-up round \(4 models",
        ),
    ],
)
def test_bad_race_arguments_fail_before_training(kwargs, message):
    """Bad settings raise before the evaluator is called (with the JAX trainer: before
    anything compiles)."""
    calls = []
    with pytest.raises(ValueError, match=message):
        jrobust.race(4, evaluator=gaussian_evaluator(MU[:4], SIGMA[:4], calls), **kwargs)
    assert calls == []


def test_a_race_without_data_says_what_it_needs(toy_population):
    space = jrobust.SearchSpace(jrobust.zoo.mlp_config(hidden=(4,), train_size=100, batch_size=20))
    with pytest.raises(TypeError, match="race\\(\\) trains the models on a population: pass one"):
        jrobust.race(space)
    with pytest.raises(TypeError, match="unknown race setting.*'warmpu'"):
        jrobust.race(space, toy_population, warmpu=3)


def test_end_to_end_race_with_the_jax_trainer(toy_population):
    base = zoo.cnn_config(
        conv=(4,), pool=(2,), dense=(8,), train_size=200, batch_size=20, epochs=2, target="energy"
    )
    space = jrobust.SearchSpace(base, learning_rate=[1e-3, 3e-3, 1e-2, 3e-2])
    assert space.n_cohorts == 1
    result = jrobust.race(
        space,
        toy_population,
        statistic="mean",
        rule="halving",
        warmup=2,
        max_instances=6,
        instances_per_round=1,
        compilation_cache=False,
    )
    assert result.n_trainings == halving_trainings(4, 2) == 14
    assert result.timing["n_cohorts"] == 1 and result.timing["n_programs"] >= 1
    assert result.timing["compile_seconds"] > 0
    row = result.ledger.iloc[len(result.ledger) // 2]
    alone = jrobust.train_instances(space[int(row.model_id)], toy_population, [int(row.instance)])
    np.testing.assert_allclose(alone["loss"].iloc[0], row.loss, rtol=1e-5)
    again = jrobust.race(
        space,
        toy_population,
        statistic="mean",
        rule="halving",
        warmup=2,
        max_instances=6,
        instances_per_round=1,
        compilation_cache=False,
    )
    np.testing.assert_array_equal(again.ledger.loss, result.ledger.loss)
    assert again.winner_id == result.winner_id and result.winner == space[result.winner_id]
    summary = result.summary()
    assert summary.model_id.iloc[0] == result.winner_id and {
        "mean",
        "std",
        "pd",
        "instances",
    } <= set(summary)
