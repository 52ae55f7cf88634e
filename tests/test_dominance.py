"""The dominance guarantee in every elimination: neither the rule nor the finalist cut removes a
model that is strictly better on mean, std and PD than a model it keeps (with no fewer
instances); the dominating model stays and the dominated one leaves instead (planted tables,
lookup evaluators, no training)."""

import numpy as np
import pandas as pd
import pytest

import jrobust
from jrobust._src.race.ranking import keep_dominators
from jrobust._src.race.resolved import ResolvedRace
from jrobust._src.race.state import RaceState
from jrobust._src.race.tell import decide, record
from jrobust._src.race.work import Outcome, Work
from jrobust._src.rules import get_rule
from jrobust._src.settings import RaceSettings
from jrobust._src.stats import get_statistic


def lookup(table):
    table = np.asarray(table, float)
    return lambda models, instances: table[models, instances]


def reference_values(row):
    """Mean, std (ddof 1) and PD (Q90 - Q10) of one model's losses, with NumPy alone."""
    row = np.asarray(row, float)
    return np.array([row.mean(), row.std(ddof=1), *np.diff(np.quantile(row, [0.1, 0.9]))])


def dominates(a, b):
    return bool((reference_values(a) < reference_values(b)).all())


def wide(n):
    """Losses spread evenly over [0.8, 2.05]: worst instance 2.05, a wide spread."""
    return np.linspace(0.8, 2.05, n)


def tight_with_outlier(n):
    """Losses 1.0-1.05 but for one instance at 2.1 (the last): a worse worst instance than
    ``wide`` but a lower mean, std and PD."""
    row = np.linspace(1.0, 1.05, n)
    row[-1] = 2.1
    return row


# ---------------------------------------------------------------------------- the rule's swaps
def halving_table():
    """Model 0 wide, model 1 tight with an outlier at instance 10, models 2 and 3 poor: halving
    on the worst instance (the default statistic) keeps 0 and 1 after 10 instances, then keeps
    0 and removes 1, which is better on mean, std and PD."""
    table = np.empty((4, 11))
    table[0], table[1] = wide(11), tight_with_outlier(11)
    table[2] = 3.0 + 0.01 * np.arange(11)
    table[3] = 3.5 + 0.02 * np.cos(np.arange(11))
    return table


def test_the_planted_case_is_one_the_rule_alone_gets_wrong():
    table = halving_table()
    assert dominates(table[1], table[0]) and table[1].max() > table[0].max()
    max_ = get_statistic("max")
    keep = get_rule("halving").select(
        table[:2], np.ones((2, 11), bool), np.ones(2, bool), 11, 9, max_, max_
    )
    assert keep.tolist() == [True, False]  # the rule keeps the dominated model


def test_the_last_halving_round_keeps_the_model_that_dominates_and_says_so():
    result = jrobust.race(4, evaluator=lookup(halving_table()), warmup=9, max_instances=11)
    assert result.winner_id == 1  # without the guarantee: model 0
    last = result.history.iloc[-1]
    assert last["round"] == 3 and last["swaps"] == [[1, 0]] and last["eliminated"] == [0]
    assert result.history.iloc[1]["swaps"] == [] and result.history.iloc[1]["eliminated"] == [2, 3]
    rows = result.path[result.path["round"] == 3].set_index("model_id")
    assert rows.loc[0, "reason"] == "dominated" and not rows.loc[0, "alive"]
    assert rows.loc[1, "reason"] == "" and rows.loc[1, "alive"]
    assert (result.path[result.path["round"] == 2].set_index("model_id").loc[[2, 3], "reason"]
            == "rule").all()  # fmt: skip


def test_a_round_report_lists_the_swap_and_the_reason():
    race = jrobust.Race(4, warmup=9, max_instances=11)
    table = halving_table()
    reports = []
    while (work := race.ask()) is not None:
        reports.append(race.tell(work, table[work.model_ids, work.instances]))
    assert reports[-1].swaps == ((1, 0),) and reports[-1].removed == {0: "dominated"}
    assert reports[1].swaps == () and set(reports[1].removed.values()) == {"rule"}


def test_ask_and_tell_give_the_ledger_of_race_with_an_evaluator_when_a_swap_happens(tmp_path):
    table = halving_table()
    reference = jrobust.race(4, evaluator=lookup(table), warmup=9, max_instances=11)
    race = jrobust.Race(4, warmup=9, max_instances=11)
    work = race.ask()
    race.tell(work, table[work.model_ids, work.instances])
    race.save(tmp_path)  # the swaps of later rounds come from a loaded race
    race = jrobust.Race.load(tmp_path)
    while (work := race.ask()) is not None:
        race.tell(work, table[work.model_ids, work.instances])
    result = race.result()
    pd.testing.assert_frame_equal(
        result.ledger.drop(columns="seconds"), reference.ledger.drop(columns="seconds")
    )
    pd.testing.assert_frame_equal(result.path, reference.path)
    assert result.history["swaps"].tolist() == reference.history["swaps"].tolist()
    assert result.winners == reference.winners == [1]


# ------------------------------------------------------------------- one decision, planted
def chain_table(n_models=5, n=8):
    """Model j: level j and spread (1 + j) around the same zero-mean noise: j dominates every
    model after it (a chain of dominances)."""
    z = np.sin(1.7 * np.arange(n) + 0.3)
    z = z - z.mean()
    return np.stack([j + (1.0 + j) * z for j in range(n_models)])


def planted_round(table, mask, drop, elites=(), **settings):
    """One round of a race that trained ``table[mask]``, decided by a rule that removes the
    models ``drop``; returns ``(state, report, kept by the rule)``."""
    drop = list(drop)

    def rule(losses, mask, alive, round_index):
        out = alive.copy()
        out[drop] = False
        return out

    race = ResolvedRace.of(
        RaceSettings(rule=rule, warmup=1, elites=len(elites), **settings), batched=False
    )
    state = RaceState.new(table.shape[0])
    models, instances = np.nonzero(mask)
    ok = np.ones(len(models), bool)
    record(state, Work(models, instances), Outcome(table[models, instances], {}, ok))
    state.elites = [int(e) for e in elites]
    report = decide(state, race)
    return state, report


def test_no_swap_when_the_dominating_model_has_fewer_instances():
    table = chain_table(2, 6)  # model 0 dominates model 1; the rule removes model 0
    fewer = np.ones((2, 6), bool)
    fewer[0, 5] = False  # model 0: 5 instances, model 1: 6
    assert dominates(table[0, :5], table[1])
    state, report = planted_round(table, fewer, drop=[0])
    assert report.swaps == () and report.removed == {0: "rule"}
    assert state.alive.tolist() == [False, True]
    for more in (np.ones((2, 6), bool), np.array([[True] * 6, [True] * 5 + [False]])):
        state, report = planted_round(table, more, drop=[0])  # as many, or more
        assert report.swaps == ((0, 1),) and report.removed == {1: "dominated"}
        assert state.alive.tolist() == [True, False]
        assert state.history[-1]["swaps"] == [[0, 1]] and state.history[-1]["eliminated"] == [1]


def test_an_elite_is_never_swapped_out():
    table = chain_table()
    # the rule removes 0 and 1 and keeps 2, 3, 4; model 3 is an elite
    state, report = planted_round(table, np.ones_like(table, bool), drop=[0, 1], elites=[3])
    assert 3 not in report.removed and state.alive[3]
    assert sorted(report.removed) == [2, 4] and report.swaps == ((0, 4), (1, 2))
    assert np.flatnonzero(state.alive).tolist() == [0, 1, 3]
    # only an elite is dominated: nothing is swapped, the dominating model leaves
    state, report = planted_round(
        table[[0, 1]], np.ones((2, table.shape[1]), bool), drop=[0], elites=[1]
    )
    assert report.swaps == () and report.removed == {0: "rule"}


def test_the_rule_keeps_its_count_and_no_removed_model_dominates_a_kept_one():
    swapped = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        m, n = 9, int(rng.integers(4, 8))
        level, spread = rng.uniform(0, 1, m), rng.uniform(0.1, 1, m)
        table = level[:, None] + spread[:, None] * rng.standard_normal((m, n))
        drop = rng.choice(m, size=int(rng.integers(1, m - 1)), replace=False)
        elites = [int(rng.integers(m))] if seed % 3 == 0 else []
        elites = [e for e in elites if e not in drop] or elites
        state, report = planted_round(table, np.ones((m, n), bool), drop, elites=elites)
        kept_by_rule = np.ones(m, bool)
        kept_by_rule[drop] = False
        kept_by_rule[elites] = True
        assert state.alive.sum() == kept_by_rule.sum()  # as many survivors as the rule kept
        expected = kept_by_rule.copy()
        for r, k in report.swaps:  # each swap: a dominating model for one it dominates
            assert dominates(table[r], table[k]) and k not in elites
            expected[r], expected[k] = True, False
        assert (state.alive == expected).all()
        for r in np.flatnonzero(~state.alive):
            for k in np.flatnonzero(state.alive):
                assert k in elites or not dominates(table[r], table[k]), (seed, r, k)
        swapped += len(report.swaps)
    assert swapped > 10  # the tables do plant dominances


def test_a_chain_of_dominances_ends_with_the_best_models_kept():
    table = chain_table()
    mask = np.ones_like(table, bool)
    counts = mask.sum(axis=1)
    keep = np.array([False, False, False, True, True])  # the rule keeps the two worst
    # an order that disagrees with dominance makes the swaps go back and forth
    out, swaps = keep_dominators(table, mask, counts, keep, ~keep, [4, 3, 2, 1, 0])
    assert out.tolist() == [True, True, False, False, False]
    depth = np.arange(5)  # model j is dominated by the j models before it
    assert 2 < len(swaps) <= depth[keep].sum()  # the bound of the docstring
    assert swaps[0] == (2, 3)  # the best leaving by the order, for the worst kept it beats
    out, swaps = keep_dominators(table, mask, counts, keep, ~keep, [0, 1, 2, 3, 4])
    assert out.tolist() == [True, True, False, False, False] and swaps == [(0, 4), (1, 3)]


# -------------------------------------------------------------------------- the finalist cut
def finalist_table():
    """Models 0-2 pass the threshold, model 3 does not; the cut to 2 finalists by the worst
    instance keeps 2 and 0, but model 1 dominates model 0. Columns 10-12: the final race."""
    table = np.empty((4, 13))
    table[0, :10], table[1, :10] = wide(10), tight_with_outlier(10)
    table[2] = 1.5 + 0.01 * np.sin(np.arange(13))
    table[3] = 3.0
    table[0, 10:], table[1, 10:] = [1.2, 1.3, 1.25], [1.1, 1.12, 1.11]
    return table


def test_the_finalist_cut_keeps_a_model_that_dominates_a_finalist():
    table = finalist_table()
    assert dominates(table[1, :10], table[0, :10]) and table[1, :10].max() > table[0, :10].max()
    result = jrobust.race(
        4,
        evaluator=lookup(table),
        rule="threshold:2.5",
        warmup=9,
        max_instances=10,
        n_winners=2,
        final_instances=3,
    )
    cut = result.history.iloc[1]
    assert cut["finalist_swaps"] == [[1, 0]] and cut["swaps"] == []
    assert sorted(cut["eliminated"]) == [0, 3]
    rows = result.path[result.path["round"] == 2].set_index("model_id")
    assert rows.loc[0, "reason"] == "dominated" and rows.loc[3, "reason"] == "rule"
    assert sorted(result.winners) == [1, 2]
    final = result.ledger[result.ledger["stage_kind"] == "final"]
    assert sorted(final.model_id.unique()) == [1, 2]


# ---------------------------------------------------------------------- summary and report
def test_the_summary_and_the_report_say_which_decision_the_guarantee_changed(tmp_path):
    result = jrobust.race(4, evaluator=lookup(halving_table()), warmup=9, max_instances=11)
    folder = jrobust.save_run(result, tmp_path / "run", figures=False)
    table = halving_table()
    mean = table[:2].mean(axis=1)
    text = (
        "model 1 (model1) was removed by the rule in round 3 but is better on mean, std and PD "
        f"than model 0 (model0) (mean {mean[1]:.3g} < {mean[0]:.3g}, std "
    )
    text = text.replace("<", "&lt;")  # summary.md shows no HTML
    summary = (folder / "summary.md").read_text()
    assert f"> **Dominance**: {text}" in summary and "which left instead." in summary
    assert "| dominated |" in summary  # the rounds table counts the swaps
    report = (folder / "report.html").read_text()
    assert text in report
    back = jrobust.load_run(folder)
    assert back.history["swaps"].tolist() == [[], [], [[1, 0]]]
    assert back.history["finalist_swaps"].tolist() == [[], [], []]
    assert (back.path["reason"] == "dominated").sum() == 1


def test_the_summary_names_a_swap_of_the_finalist_cut(tmp_path):
    result = jrobust.race(
        4,
        evaluator=lookup(finalist_table()),
        rule="threshold:2.5",
        warmup=9,
        max_instances=10,
        n_winners=2,
        final_instances=3,
    )
    folder = jrobust.save_run(result, tmp_path / "run", figures=False)
    summary = (folder / "summary.md").read_text()
    assert "model 1 (model1) was not among the finalists by max in round 2 but is better" in summary


@pytest.mark.parametrize("rule", ["halving", "wilcoxon"])
def test_without_dominances_the_race_is_what_its_rule_decides(rule):
    """A table where level and spread disagree (the better mean has the wider spread): no
    model dominates another, so no decision changes."""
    z = np.sin(2.3 * np.arange(20))
    table = np.stack([1.0 + 0.05 * j + (1.0 - 0.1 * j) * z for j in range(8)])
    result = jrobust.race(8, evaluator=lookup(table), rule=rule, warmup=6, max_instances=20)
    assert all(s == [] for s in result.history["swaps"])
    assert "dominated" not in set(result.path["reason"])
