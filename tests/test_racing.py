"""Racing like the configurators: elites, the final race, fidelity stages, p-values in the path,
the default statistic and the dominance guarantee (lookup evaluators, no training)."""

import numpy as np
import pandas as pd
import pytest
from conftest import stop_after

import jrobust
from jrobust._src.race.ranking import dominance_message, final_order
from jrobust._src.race.stages import stage_target
from jrobust._src.rules import get_rule
from jrobust._src.settings import RaceSettings
from jrobust._src.stats import adjust_pvalues, get_statistic, two_sample_pvalues


def lookup(table, calls=None):
    """An evaluator over a fixed ``(models, instances)`` table (``calls`` records each call)."""
    table = np.asarray(table, float)

    def evaluate(models, instances):
        if calls is not None:
            calls.append((models.copy(), instances.copy()))
        return table[models, instances]

    return evaluate


def noisy(mu, sigma, seed=7):
    """Losses ``mu[m] + sigma[m] z(m, i)`` for any instance index and size (sizes ignored)."""
    mu, sigma = np.asarray(mu, float), np.asarray(sigma, float)

    def evaluate(models, instances, sizes=None):
        z = [
            np.random.default_rng([seed, m, i]).standard_normal()
            for m, i in zip(models, instances, strict=True)
        ]
        return mu[models] + sigma[models] * np.asarray(z)

    return evaluate


# ------------------------------------------------------------------------------------ elites
def unlucky_table(width=12):
    """Model 0 is the best (0.5 a round) but loses 3.0 at instance 3, its one unlucky round;
    models 1-3 are constant 1.01, 1.05 and 1.2."""
    table = np.empty((4, width))
    table[0] = 0.5
    table[0, 3] = 3.0
    table[1:] = np.array([1.01, 1.05, 1.2])[:, None]
    return table


def test_without_elites_one_unlucky_round_removes_the_best_model():
    result = jrobust.race(4, evaluator=lookup(unlucky_table()), statistic="mean", warmup=3)
    assert result.history.eliminated[1] == [0, 3]  # model 0's mean after instance 3: 1.125
    assert result.winner_id == 1


def test_an_elite_survives_its_unlucky_round_and_wins():
    result = jrobust.race(
        4, evaluator=lookup(unlucky_table()), statistic="mean", warmup=3, elites=1
    )
    h = result.history
    assert h.elites[1] == [0] and h.rescued[1] == [0]  # the best after the warm-up is protected
    assert h.eliminated[1] == [3] and h.remaining[1] == 3  # the rule's others leave as before
    assert result.path[(result.path["round"] == 2) & (result.path.model_id == 0)].elite.item()
    assert result.winner_id == 0
    # the protection is for the round only: the next round's elite is model 1, the best by then
    assert h.elites[2] == [1]


def test_elites_never_block_the_race_from_reaching_n_winners():
    table = np.tile(np.arange(1.0, 5.0)[:, None], (1, 20))
    result = jrobust.race(4, evaluator=lookup(table), statistic="mean", warmup=2, elites=3)
    assert result.finished and len(result.winners) == 1 and result.winner_id == 0
    assert result.timing["stop_reason"] == "winners"


# ------------------------------------------------------------------------------------ final race
def final_table():
    """Six models; on instances 0-4 (the race's) model 0 beats model 1, on instances 5+ (the
    final race's fresh ones) model 1 beats model 0."""
    table = np.tile(np.array([1.0, 1.1, 2.0, 2.1, 2.2, 2.3])[:, None], (1, 30))
    table[0, 5:], table[1, 5:] = 1.2, 1.0
    return table


def test_final_race_trains_the_finalists_on_fresh_instances_and_reorders_them():
    calls = []
    ev = lookup(final_table(), calls)
    without = jrobust.race(6, evaluator=ev, statistic="mean", warmup=3, n_winners=2)
    assert without.winners == [0, 1] and set(without.ledger.stage_kind) == {"race"}
    calls.clear()
    result = jrobust.race(
        6, evaluator=ev, statistic="mean", warmup=3, n_winners=2, final_instances=4
    )
    assert result.winners == [1, 0] and result.winner_id == 1
    led = result.ledger
    race_rows, final = led[led.stage_kind == "race"], led[led.stage_kind == "final"]
    # the race itself is the one without a final: halving 6 -> 3 -> 2 after 3 warm-up instances
    pd.testing.assert_frame_equal(
        race_rows.drop(columns="seconds").reset_index(drop=True),
        without.ledger.drop(columns="seconds").reset_index(drop=True),
    )
    assert sorted(final.model_id.unique()) == [0, 1] and len(final) == 8
    assert final.instance.min() == led[led.stage_kind == "race"].instance.max() + 1  # fresh
    assert sorted(set(final.instance)) == [5, 6, 7, 8]
    pairs = [(int(m), int(i)) for ms, is_ in calls for m, i in zip(ms, is_, strict=True)]
    assert len(pairs) == len(set(pairs)) == len(led)  # no instance trained twice
    h = result.history
    assert list(h.stage_kind) == ["race", "race", "race", "final"]
    assert h.iloc[-1].trained == 8 and h.iloc[-1].eliminated == []
    assert result.stages[-1]["kind"] == "final" and result.stages[-1]["first_instance"] == 5
    assert result.timing["stop_reason"] == "winners" and result.finished
    # the summary judges the finalists on their final-race instances
    top = result.summary(top=2)
    assert top.model_id.tolist() == [1, 0] and top["mean"].tolist() == [1.0, 1.2]


def test_final_race_cuts_to_the_best_n_winners_when_the_race_stops_with_more():
    table = np.tile(np.array([1.0, 1.1, 1.2, 1.3])[:, None], (1, 30))
    table[2, 6:] = 0.5  # model 2 is the best on the fresh instances
    result = jrobust.race(
        4,
        evaluator=lookup(table),
        statistic="mean",
        rule="threshold:5",  # keeps everyone: the race stops at max_instances
        warmup=3,
        max_instances=6,
        n_winners=3,
        final_instances=3,
    )
    final = result.ledger[result.ledger.stage_kind == "final"]
    assert sorted(final.model_id.unique()) == [0, 1, 2]  # model 3 is cut before the final
    assert result.winners == [2, 0, 1] and result.timing["stop_reason"] == "max_instances"
    assert 3 in result.history.eliminated.iloc[-2]


def test_a_final_race_the_budget_cannot_cover_is_skipped():
    result = jrobust.race(
        6,
        evaluator=lookup(final_table()),
        statistic="mean",
        warmup=3,
        n_winners=2,
        final_instances=10,
        budget=30,
    )
    assert result.timing["stop_reason"] == "budget" and set(result.ledger.stage_kind) == {"race"}
    assert result.winners == [0, 1]


# ------------------------------------------------------------------------------------ fidelity
SIZES = (100, 400, 1600)


def sized(mu, sigma, calls=None):
    """A noisy evaluator that takes sizes: smaller sizes add ``10 / sqrt(size)`` to the loss."""
    base = noisy(mu, sigma)

    def evaluate(models, instances, sizes):
        if calls is not None:
            calls.append((models.copy(), instances.copy(), np.asarray(sizes).copy()))
        return base(models, instances) + 10 / np.sqrt(sizes)

    return evaluate


MU16 = np.linspace(1.0, 2.5, 16)[::-1].copy()  # model 15 is the best
SIGMA16 = np.full(16, 0.05)


def test_fidelity_stages_as_documented():
    calls = []
    result = jrobust.race(
        16, evaluator=sized(MU16, SIGMA16, calls), statistic="mean", warmup=3, fidelity=SIZES
    )
    settings = RaceSettings(fidelity=SIZES)
    assert [stage_target(settings, 16, s) for s in (0, 1)] == [7, 3]  # ceil(16 (1/16)^(k/3))
    stages = result.stages
    assert [s["train_size"] for s in stages] == list(SIZES)
    assert [(s["models"], s["survivors"]) for s in stages] == [(16, 4), (4, 2), (2, 1)]
    assert [s["end"] for s in stages] == ["target", "target", "winners"]
    assert [s["first_instance"] for s in stages] == [0, 5, 9]  # fresh indices every stage
    led = result.ledger
    spans = led.groupby("train_size").instance.agg(["min", "max"])
    assert spans.to_dict("index") == {
        100: {"min": 0, "max": 4},
        400: {"min": 5, "max": 8},
        1600: {"min": 9, "max": 12},
    }
    # every stage starts with its own warm-up and sees only its own instances
    path = result.path
    assert path.groupby("train_size").instances.min().tolist() == [3, 3, 3]
    assert result.history.train_size.tolist() == [100, 100, 100, 400, 400, 1600, 1600]
    # the evaluator got the sizes, one per instance, as the ledger has them
    got = pd.DataFrame(
        {
            "model_id": np.concatenate([c[0] for c in calls]),
            "instance": np.concatenate([c[1] for c in calls]),
            "train_size": np.concatenate([c[2] for c in calls]),
        }
    ).sort_values(["model_id", "instance"], ignore_index=True)
    pd.testing.assert_frame_equal(
        got, led[["model_id", "instance", "train_size"]], check_dtype=False
    )
    assert result.winner_id == 15
    assert result.summary(top=1).train_size.item() == 1600


def test_fidelity_statistics_use_only_the_stage_instances():
    calls = []
    result = jrobust.race(
        16, evaluator=sized(MU16, SIGMA16, calls), statistic="mean", warmup=3, fidelity=SIZES
    )
    led = result.ledger
    second = result.path[result.path["round"] == 5]  # the first elimination of stage 1
    assert len(second) == 4
    for _, row in second.iterrows():
        mine = led[(led.model_id == row.model_id) & (led.train_size == 400) & (led["round"] <= 5)]
        assert len(mine) == row.instances == 4
        assert row.statistic == pytest.approx(mine.loss.mean())


def test_a_stage_left_with_n_winners_skips_to_the_last_size():
    mu = np.array([1.0, 3.0, 3.1, 3.2])
    result = jrobust.race(
        4, evaluator=sized(mu, np.full(4, 0.01)), statistic="mean", rule="welch", warmup=3,
        fidelity=SIZES,
    )  # fmt: skip
    # Welch removes 1-3 at once in stage 0; the winner is still judged at the last size
    assert [s["train_size"] for s in result.stages] == [100, 1600]
    assert result.ledger.train_size.max() == 1600 and result.winner_id == 0


def test_a_race_stopped_in_the_middle_of_a_stage_resumes_to_the_identical_ledger(tmp_path):
    kw = dict(statistic="mean", warmup=3, fidelity=SIZES, n_winners=2, final_instances=3, elites=1)
    full = jrobust.race(16, evaluator=sized(MU16, SIGMA16), **kw)
    assert [s["kind"] for s in full.stages] == ["race", "race", "race", "final"]
    for stop in (2, 4, 6):  # inside stage 0, at the start of stage 1, the last stage
        folder = tmp_path / f"stop{stop}"
        part = jrobust.race(
            16,
            evaluator=sized(MU16, SIGMA16),
            checkpoint_dir=folder,
            progress=stop_after(stop),
            **kw,
        )
        assert not part.finished and len(part.history) == stop
        calls = []
        resumed = jrobust.race(
            16, evaluator=sized(MU16, SIGMA16, calls), checkpoint_dir=folder, **kw
        )
        assert sum(len(c[0]) for c in calls) == full.n_trainings - part.n_trainings
        pd.testing.assert_frame_equal(
            resumed.ledger.drop(columns="seconds"), full.ledger.drop(columns="seconds")
        )
        pd.testing.assert_frame_equal(resumed.path, full.path)
        assert resumed.stages == full.stages and resumed.winners == full.winners


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(fidelity=[400, 100]), ValueError, "must increase strictly"),
        (dict(fidelity=[100, 100]), ValueError, "must increase strictly"),
        (dict(fidelity=[0, 100]), ValueError, "fidelity size must be a positive integer"),
        (dict(fidelity=[]), ValueError, "at least one training size"),
        (dict(fidelity="100,x"), ValueError, "increasing training sizes"),
    ],
)
def test_bad_fidelity_schedules_fail_before_training(kwargs, error, message):
    calls = []
    with pytest.raises(error, match=message):
        jrobust.race(16, evaluator=sized(MU16, SIGMA16, calls), **kwargs)
    assert calls == []


def test_fidelity_needs_an_evaluator_that_takes_sizes():
    calls = []
    with pytest.raises(TypeError, match="evaluator must take them"):
        jrobust.race(4, evaluator=lookup(unlucky_table(), calls), fidelity=[100, 200])
    assert calls == []


def test_fidelity_sizes_are_checked_against_the_space_and_the_data(toy_population):
    base = jrobust.zoo.mlp_config(hidden=(4,), train_size=200, batch_size=20, target="energy")
    space = jrobust.SearchSpace(base, batch_size=[20, 50])
    calls = []
    ev = sized(np.ones(2), np.ones(2), calls)
    with pytest.raises(
        ValueError, match=r"smaller than the largest batch size of the space \(50, model 1\)"
    ):
        jrobust.race(space, evaluator=ev, fidelity=[40, 200])
    assert jrobust.race(space, evaluator=ev, fidelity=[50, 200], warmup=2).n_trainings > 0
    pool = toy_population.pool_size
    with pytest.raises(ValueError, match=f"larger than the population's training pool of {pool}"):
        jrobust.race(space, toy_population, fidelity=[100, pool + 1])


# ------------------------------------------------------------------------------------ p-values
def test_test_rules_write_their_corrected_pvalues_in_the_path():
    mu = np.array([1.0, 1.05, 1.3, 1.4, 1.5, 1.6])
    sigma = np.full(6, 0.1)
    result = jrobust.race(
        6, evaluator=noisy(mu, sigma), statistic="mean", rule="welch", correction="holm", warmup=4
    )
    first = result.path[result.path["round"] == 2]
    assert first.pvalue.notna().sum() == 5 and first.pvalue.isna().sum() == 1  # the best: none
    table = np.full((6, 5), np.nan)
    for _, r in result.ledger[result.ledger["round"] <= 2].iterrows():
        table[int(r.model_id), int(r.instance)] = r.loss
    mask = ~np.isnan(table)
    best = int(first.loc[first.pvalue.isna(), "model_id"].item())
    raw = two_sample_pvalues("welch", table, mask, best)
    others = np.arange(6) != best
    np.testing.assert_allclose(first.pvalue_raw.to_numpy()[others], raw[others])
    np.testing.assert_allclose(first.pvalue.to_numpy()[others], adjust_pvalues(raw[others], "holm"))
    # removed exactly where the corrected p-value is below alpha (and the mean is worse)
    assert (first[~first.alive].pvalue < 0.05).all() and (
        first[first.alive].pvalue.fillna(1) >= 0.05
    ).all()
    assert result.path[result.path["round"] == 1].pvalue.isna().all()  # nothing tested at warm-up


def test_friedman_records_its_omnibus_pvalue():
    mu = np.array([1.0, 1.5, 2.0, 2.5])
    result = jrobust.race(
        4, evaluator=noisy(mu, np.full(4, 0.1)), statistic="mean", rule="friedman", warmup=3
    )
    assert result.history.pvalue_omnibus.notna().any()
    assert get_rule("friedman").pvalues(
        np.array([[1.0, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 6]]),
        np.ones((3, 4), bool),
        np.ones(3, bool),
    ).omnibus == pytest.approx(0.0183, abs=1e-3)


# ------------------------------------------------------------------------------------ dominance
# The measured case: q3+iqr crowned model 3 (median 0.035, one instance at 0.073; mean 0.0397,
# std 0.0120) over model 5 (mean 0.0360, std 0.0026, PD 0.0065).
CROWNED = [0.0345, 0.0347, 0.0349, 0.035, 0.035, 0.035, 0.0352, 0.0355, 0.044, 0.073]
BETTER = [0.0325, 0.033, 0.0345, 0.0346, 0.0347, 0.0363, 0.0365, 0.0386, 0.0394, 0.0399]


def measured_table():
    table = np.tile(np.linspace(0.06, 0.1, 6)[:, None], (1, 10))
    table += 0.002 * np.sin(np.arange(60).reshape(6, 10))
    table[3], table[5] = CROWNED, BETTER
    return table


def test_the_measured_numbers():
    x = np.array([CROWNED, BETTER])
    stat = {n: get_statistic(n)(x) for n in ("median", "mean", "std", "pd", "q3+iqr")}
    assert np.round(stat["mean"], 4).tolist() == [0.0397, 0.036]
    assert np.round(stat["std"], 4).tolist() == [0.012, 0.0026]
    assert stat["median"][0] == 0.035 and max(CROWNED) == 0.073
    assert round(stat["pd"][1], 4) == 0.0065 and stat["pd"][0] > stat["pd"][1]
    assert stat["q3+iqr"][0] < stat["q3+iqr"][1]  # q3+iqr prefers the crowned model


def test_no_model_wins_while_another_survivor_beats_it_on_mean_std_and_pd():
    result = jrobust.race(
        6,
        evaluator=lookup(measured_table()),
        statistic="q3+iqr",
        rule="threshold:0.045",  # keeps models 3 and 5 to the end (max_instances)
        warmup=9,
        max_instances=10,
    )
    assert sorted(result.path[result.path["round"] == 2].query("alive").model_id) == [3, 5]
    assert result.summary(top=2).model_id.tolist() == [5, 3]
    assert result.winner_id == 5
    assert result.dominance["crowned"] == 3 and result.dominance["dominated_by"] == [5]
    note = result.dominance_note
    assert note.startswith("model 3 (model3) was ranked first by q3+iqr but model 5 (model5) is")
    assert "better on mean, std and PD" in note and note.endswith("so model 5 (model5) wins")
    assert "mean 0.036 < 0.0397" in note and "std 0.0026 < 0.012" in note


def test_dominance_leaves_an_undominated_winner_alone():
    table = measured_table()
    table[5] = np.array(BETTER) + 0.01  # now worse on mean: no dominance
    result = jrobust.race(
        6,
        evaluator=lookup(table),
        statistic="q3+iqr",
        rule="threshold:0.06",
        warmup=10,
        max_instances=10,
    )
    assert result.winner_id == 3 and result.dominance is None and result.dominance_note == ""


def test_final_order_picks_the_best_undominated_model():
    q = get_statistic("q3+iqr")
    tight = 0.040 + 0.0002 * np.sin(np.arange(10))  # worse mean than CROWNED, far narrower
    rows = np.array([CROWNED, BETTER, tight])
    assert np.argsort(q(rows)).tolist() == [0, 2, 1]  # q3+iqr: crowned, tight, better
    order, note = final_order(q, q, rows, np.ones_like(rows, bool), np.ones(3, bool))
    # row 1 dominates row 0; row 2 is dominated by nobody and ranks before row 1
    assert order.tolist() == [2, 0, 1]
    assert (note["crowned"], note["dominated_by"], note["winner"]) == (0, [1], 2)
    text = dominance_message(note)
    assert text.startswith("model 0 was ranked first by q3+iqr but model 1 is better")
    assert text.endswith(
        "model 2, the best survivor by q3+iqr that no other survivor beats on all three, wins"
    )
