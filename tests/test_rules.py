"""Elimination rules of jrobust._src.rules: the registry contract, halving counts, planted models."""

import numpy as np
import pytest
import scipy.stats

import jrobust
from jrobust._src.rules import (
    PAIRED_RULES,
    RULES,
    TEST_RULES,
    Bootstrap,
    Friedman,
    FunctionRule,
    Halving,
    PairedTest,
    Quantile,
    Rule,
    SignificanceRule,
    Threshold,
    TwoSampleTest,
    get_rule,
    halving_trainings,
)
from jrobust._src.stats import (
    CORRECTIONS,
    PAIRED_TESTS,
    SPREAD_TESTS,
    TESTS,
    adjust_pvalues,
    friedman,
    get_statistic,
    paired_bootstrap,
    paired_pvalues,
    two_sample_pvalues,
)

OPTIONS = {"threshold": {"value": 1.5}}  # every other rule builds from its name alone
# Warm-up each rule needs: wilcoxon's first test needs 6 pairs to reach p < 0.05 (2^-5 = 0.031).
MIN_WARMUP = {
    **{name: 1 for name in ("halving", "quantile", "threshold")},
    **{test: 2 for test in TESTS},
    "friedman": 3,
    "wilcoxon": 5,
    "ttest_paired": 2,
    "bootstrap": 4,
}


def make(name, **kwargs):
    return get_rule(name, **{**OPTIONS.get(name, {}), **kwargs})


def full(losses):
    return np.ones(losses.shape, dtype=bool)


def race(rule, losses, warmup, statistic="mean", rank_by=None):
    """Algorithm 1 with one instance per alive model per round; returns alive masks and count."""
    n_models, n_instances = losses.shape
    alive, trained, history, trainings = np.ones(n_models, bool), np.zeros(n_models, int), [], 0
    for round_index in range(1, n_instances + 1):
        trained[alive] += 1
        trainings += alive.sum()
        mask = np.arange(n_instances)[None, :] < trained[:, None]
        alive = rule.select(losses, mask, alive, round_index, warmup, statistic, rank_by)
        history.append(alive)
        if round_index >= warmup and alive.sum() == 1:
            break
    return history, trainings


def standardized(n, seed=0):
    z = np.random.default_rng(seed).standard_normal(n)
    return (z - z.mean()) / z.std(ddof=1)


@pytest.mark.parametrize("name", RULES)
def test_registry_contract(name):
    rule = make(name)
    assert isinstance(rule, Rule) and rule.name == name
    assert rule.min_warmup == MIN_WARMUP[name]
    rng = np.random.default_rng(0)
    losses = rng.lognormal(size=(7, 6)) * np.arange(1, 8)[:, None]
    losses[3, 1] = np.nan
    alive = np.array([True, True, False, True, True, True, True])
    warmup = rule.min_warmup
    kept = rule.select(losses, full(losses), alive, warmup, warmup)
    np.testing.assert_array_equal(kept, alive)  # warm-up: nothing removed
    assert kept is not alive
    after = rule.select(losses, full(losses), alive, warmup + 1, warmup)
    assert after.dtype == np.bool_ and after.shape == (7,)
    assert after.any() and not (after & ~alive).any()
    assert after.sum() < alive.sum()  # these losses are spread enough for every rule to cut
    failed = np.full_like(losses, np.nan)
    assert rule.select(failed, full(losses), alive, warmup + 1, warmup).sum() >= 1


@pytest.mark.parametrize("name", RULES)
def test_no_removal_during_warmup(name):
    losses = np.array([[1.0] * 6, [50.0, 60.0, 70.0, 80.0, 90.0, 99.0], [np.nan] * 6])
    alive = np.ones(3, bool)
    rule = make(name)
    warmup = max(4, rule.min_warmup)
    for round_index in range(1, warmup + 1):
        out = rule.select(losses, full(losses), alive, round_index, warmup)
        np.testing.assert_array_equal(out, alive)
    assert not rule.select(losses, full(losses), alive, warmup + 1, warmup).all()


@pytest.mark.parametrize("n_alive", range(1, 10))
def test_halving_keeps_better_ceil_half(n_alive):
    rng = np.random.default_rng(n_alive)
    losses = rng.permutation(np.arange(n_alive + 3.0))[:, None] + rng.random((n_alive + 3, 3))
    alive = np.zeros(n_alive + 3, bool)
    alive[rng.choice(n_alive + 3, n_alive, replace=False)] = True
    out = Halving().select(losses, full(losses), alive, 2, 1)
    means = losses.mean(axis=1)
    survivors = np.flatnonzero(alive)
    expected = survivors[np.argsort(means[survivors])[: (n_alive + 1) // 2]]
    assert sorted(np.flatnonzero(out)) == sorted(expected)


def test_ties_go_to_lower_index():
    losses = np.ones((5, 3))
    assert kept(Halving(), losses, 2, 1).tolist() == [0, 1, 2]
    out = Threshold(0.5).select(losses, full(losses), np.array([0, 1, 1, 1, 1], bool), 2, 1)
    assert np.flatnonzero(out).tolist() == [1]
    # The best of two identical models is row 0: row 1 is tested against it, not the reverse.
    losses = np.array([[1.0, 1.1, 0.9], [1.0, 1.1, 0.9], [5.0, 5.1, 4.9]])
    assert kept(TwoSampleTest("welch"), losses, 3, 2).tolist() == [0, 1]


def test_halving_trainings_hand_values():
    assert halving_trainings(4, 4) == 22
    assert halving_trainings(1, 3) == 3
    # M=3: 3->2->1; M=5: 5->3->2->1; M=6: 6->3->2->1; M=7: 7->4->2->1 (k=4: 4M + sum of n_j > 1).
    assert [halving_trainings(m, 4) for m in (3, 5, 6, 7)] == [17, 30, 35, 41]
    assert [halving_trainings(m, 2) for m in (3, 5, 6, 7)] == [11, 20, 23, 27]
    with pytest.raises(ValueError, match="n_models >= 1"):
        halving_trainings(0, 2)


@pytest.mark.parametrize("power", range(0, 8))
@pytest.mark.parametrize("warmup", [1, 2, 5])
def test_halving_trainings_power_of_two(power, warmup):
    assert halving_trainings(2**power, warmup) == (warmup + 2) * 2**power - 2


@pytest.mark.parametrize("n_models", [1, 2, 3, 5, 6, 7, 8, 13])
@pytest.mark.parametrize("warmup", [1, 3])
def test_halving_race_trains_halving_trainings(n_models, warmup):
    losses = np.random.default_rng(n_models).random((n_models, warmup + 12))
    history, trainings = race(Halving(), losses, warmup)
    assert trainings == halving_trainings(n_models, warmup)
    assert history[-1].sum() == 1


def planted_table(n_models=8, n_instances=20, seed=0):
    """Row 0 has the lowest mean and by far the smallest spread."""
    rng = np.random.default_rng(seed)
    mu = np.concatenate([[1.0], rng.uniform(1.5, 3.0, n_models - 1)])
    sd = np.concatenate([[0.001], rng.uniform(0.1, 0.5, n_models - 1)])
    return mu[:, None] + sd[:, None] * rng.standard_normal((n_models, n_instances))


THRESHOLDS = {"mean": 1.2, "median": 1.2, "std": 0.05, "pd": 0.05}


@pytest.mark.parametrize("statistic", ["mean", "median", "std", "pd"])
@pytest.mark.parametrize("name", RULES)
def test_planted_winner_survives_every_rule(name, statistic):
    rule = make(name, **({"value": THRESHOLDS[statistic]} if name == "threshold" else {}))
    losses = planted_table()
    history, _ = race(rule, losses, warmup=max(2, rule.min_warmup), statistic=statistic)
    assert all(alive[0] for alive in history)
    if name in ("halving", "quantile", "threshold"):
        assert np.flatnonzero(history[-1]).tolist() == [0]
    else:
        assert history[-1].sum() < len(losses)


@pytest.mark.parametrize("name", ["halving", "quantile", "threshold"])
def test_failed_model_is_cut(name):
    losses = planted_table()
    losses[1] = 0.5  # best on every instance...
    losses[1, 1] = np.nan  # ...but one failed
    out = make(name).select(losses, full(losses), np.ones(8, bool), 3, 2, "mean")
    assert out[0] and not out[1]


def wide_table():
    """W narrow and best on average, A slightly worse on average but wide, C and D narrow, bad."""
    z = standardized(20)
    mu_sd = [(1.0, 0.02), (1.05, 0.5), (2.0, 0.02), (3.0, 0.02)]
    return np.array([mu + sd * z for mu, sd in mu_sd])


SPREAD_CONFIGS = [
    ("halving", "std", None),
    ("halving", "pd", None),
    ("quantile", "std", None),
    ("quantile", "pd", None),
    ("levene", "std", "mean"),
    ("bartlett", "std", "mean"),
    ("fligner", "pd", "mean"),
    ("bootstrap", "std", "mean"),
    ("bootstrap", "pd", "mean"),
    ("bootstrap", "q3+iqr", "mean"),
]
MEAN_CONFIGS = [
    ("halving", "mean", None),
    ("quantile", "mean", None),
    ("welch", "mean", None),
    ("wilcoxon", "mean", None),
    ("ttest_paired", "mean", None),
    ("bootstrap", "mean", None),
]


@pytest.mark.parametrize("name,statistic,rank_by", SPREAD_CONFIGS + MEAN_CONFIGS)
def test_wide_model_removed_by_spread_kept_by_mean(name, statistic, rank_by):
    losses = wide_table()
    rule = make(name)
    warmup = max(2, rule.min_warmup)
    out = rule.select(
        losses, full(losses), np.ones(4, bool), warmup + 1, warmup, statistic, rank_by
    )
    assert out[0]
    assert out[1] == ((name, statistic, rank_by) in MEAN_CONFIGS)


def test_significantly_better_spread_is_never_removed():
    losses = wide_table()
    losses[1] -= 0.1  # the wide model is now best on average
    rule = TwoSampleTest("levene")
    out = rule.select(losses, full(losses), np.ones(4, bool), 3, 2, "std", "mean")
    assert out[:2].tolist() == [True, True]
    # Eliminating by the mean instead, the narrow model differs and is worse: it leaves.
    out = rule.select(losses, full(losses), np.ones(4, bool), 3, 2, "mean", "mean")
    assert out[:2].tolist() == [False, True]


def kept(rule, losses, *args):
    return np.flatnonzero(rule.select(losses, full(losses), np.ones(len(losses), bool), *args))


def test_quantile_and_threshold_cuts():
    losses = np.array([[4.0], [1.0], [2.0], [3.0], [np.nan]])
    assert kept(Quantile(0.5), losses, 2, 1).tolist() == [1, 2, 3]  # the median counts the inf
    assert kept(Quantile(0.25), losses, 2, 1).tolist() == [1, 2]
    assert kept(Quantile(1.0), losses, 2, 1).tolist() == [0, 1, 2, 3]  # the failed model leaves
    assert kept(Quantile(0.01), losses, 2, 1).tolist() == [1]
    assert kept(Threshold(3.0), losses, 2, 1).tolist() == [1, 2, 3]
    # Nothing under the threshold: the best by rank_by (here the max, not the mean) survives.
    pair = np.array([[4.0, 9.0], [7.0, 8.0]])
    assert kept(Threshold(1.0), pair, 2, 1, "mean", "max").tolist() == [1]
    assert kept(Threshold(1.0), pair, 2, 1, "mean").tolist() == [0]


def test_patience():
    rule = TwoSampleTest(patience=2)
    assert rule.should_stop([3, 0, 0])
    assert not rule.should_stop([0, 3, 0])
    assert not rule.should_stop([0])
    assert not TwoSampleTest().should_stop([0] * 10)
    assert not Halving().should_stop([0] * 10)


def test_function_rule():
    calls = []

    def keep_first(losses, mask, alive, round_index):
        calls.append(round_index)
        return np.arange(len(alive)) == 0

    rule = get_rule(keep_first)
    assert isinstance(rule, FunctionRule) and rule.name == "keep_first"
    losses = np.array([[3.0, 3.0], [1.0, 1.0], [2.0, 2.0]])
    alive = np.array([False, True, True])
    assert rule.select(losses, full(losses), alive, 1, 1).tolist() == alive.tolist()
    assert calls == []  # not consulted during warm-up
    # Its answer excludes every alive model: the best alive one by rank_by survives.
    assert rule.select(losses, full(losses), alive, 2, 1).tolist() == [False, True, False]
    assert calls == [2]


def test_get_rule_returns_rules_and_options():
    rule = Halving()
    assert get_rule(rule) is rule
    assert get_rule("mannwhitney", alpha=0.1, alternative="greater") == TwoSampleTest(
        "mannwhitney", 0.1, "greater"
    )
    assert get_rule("quantile", keep=0.25) == Quantile(0.25)


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\)"):
        TwoSampleTest(alpha=alpha)
    with pytest.raises(ValueError, match="alpha"):
        get_rule("levene", alpha=alpha)


@pytest.mark.parametrize("test", ["bartlett", "levene", "fligner"])
def test_one_sided_spread_test_rejected(test):
    with pytest.raises(ValueError, match="two-sided only"):
        get_rule(test, alternative="greater")


def test_bad_names_and_options():
    with pytest.raises(ValueError, match="halving, quantile, threshold, welch"):
        get_rule("successive")
    with pytest.raises(ValueError, match="welch, mannwhitney, ks"):
        TwoSampleTest("ttest")
    with pytest.raises(ValueError, match="alternative"):
        TwoSampleTest(alternative="bigger")
    with pytest.raises(ValueError, match="patience"):
        TwoSampleTest(patience=0)
    with pytest.raises(ValueError, match="keep"):
        Quantile(0.0)
    with pytest.raises(ValueError, match="finite"):
        Threshold(float("inf"))
    with pytest.raises(TypeError, match="accepts"):
        get_rule("halving", alpha=0.1)
    with pytest.raises(ValueError, match="already built"):
        get_rule(Halving(), keep=0.5)
    with pytest.raises(ValueError, match="unknown statistic"):
        Halving().select(np.ones((2, 2)), np.ones((2, 2), bool), np.ones(2, bool), 2, 1, "avg")


def test_bad_select_arguments():
    losses = np.ones((3, 4))
    alive = np.ones(3, bool)
    with pytest.raises(ValueError, match="warmup >= 2"):
        TwoSampleTest().select(losses, full(losses), alive, 3, 1)
    with pytest.raises(ValueError, match="warmup >= 1"):
        Halving().select(losses, full(losses), alive, 3, 0)
    with pytest.raises(ValueError, match="alive must be a bool array"):
        Halving().select(losses, full(losses), np.ones(2, bool), 3, 1)
    with pytest.raises(ValueError, match="no model"):
        Halving().select(losses, full(losses), np.zeros(3, bool), 3, 1)
    with pytest.raises(ValueError, match="round_index"):
        Halving().select(losses, full(losses), alive, 0, 1)
    with pytest.raises(ValueError, match="same"):
        Halving().select(losses, np.ones((3, 3), bool), alive, 2, 1)


# --- test rules: paired tests, Friedman, bootstrap, corrections ---------------------------------


def test_test_rule_names():
    assert PAIRED_RULES == ("friedman", "wilcoxon", "ttest_paired")
    assert TEST_RULES == (*TESTS, *PAIRED_RULES, "bootstrap")
    assert set(TEST_RULES) <= set(RULES)
    for name in RULES:
        assert isinstance(make(name), SignificanceRule) == (name in TEST_RULES), name


@pytest.mark.parametrize("name", TEST_RULES)
def test_every_test_rule_takes_alpha_patience_correction(name):
    rule = get_rule(name, alpha=0.1, patience=2, correction="holm")
    assert (rule.alpha, rule.patience, rule.correction) == (0.1, 2, "holm")
    assert rule.should_stop([3, 0, 0]) and not rule.should_stop([0, 3, 0])
    assert make(name).correction is None and not make(name).should_stop([0] * 10)
    with pytest.raises(ValueError, match="use None .no correction., 'holm' or 'bonferroni'"):
        get_rule(name, correction="fdr")
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\)"):
        get_rule(name, alpha=1.0)
    with pytest.raises(ValueError, match="patience"):
        get_rule(name, patience=0)


def test_get_rule_paired_options():
    assert get_rule("wilcoxon", alpha=0.1, correction="holm") == PairedTest(
        "wilcoxon", 0.1, correction="holm"
    )
    assert get_rule("ttest_paired", alternative="greater") == PairedTest(
        "ttest_paired", 0.05, "greater"
    )
    assert get_rule("friedman", posthoc="nemenyi") == Friedman(posthoc="nemenyi")
    assert get_rule("bootstrap", n_resamples=200, seed=3) == Bootstrap(n_resamples=200, seed=3)
    assert get_rule("levene", correction="bonferroni").correction == "bonferroni"
    assert [make(t).name for t in PAIRED_TESTS] == list(PAIRED_TESTS)
    with pytest.raises(
        TypeError, match=r"accepts \['alpha', 'alternative', 'patience', 'correction'\]"
    ):
        get_rule("wilcoxon", keep=0.5)
    with pytest.raises(
        TypeError, match=r"accepts \['alpha', 'posthoc', 'patience', 'correction'\]"
    ):
        get_rule("friedman", alternative="greater")
    with pytest.raises(TypeError, match="'n_resamples', 'seed'"):
        get_rule("bootstrap", replicates=10)
    with pytest.raises(ValueError, match="conover, nemenyi"):
        get_rule("friedman", posthoc="tukey")
    with pytest.raises(ValueError, match="wilcoxon, ttest_paired"):
        PairedTest("sign")
    with pytest.raises(ValueError, match="alternative"):
        PairedTest(alternative="bigger")
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="n_resamples must be a positive integer"):
            Bootstrap(n_resamples=bad)
    with pytest.raises(ValueError, match="seed must be an integer"):
        Bootstrap(seed=None)
    with pytest.raises(ValueError, match="warmup >= 5"):
        make("wilcoxon").select(np.ones((2, 8)), np.ones((2, 8), bool), np.ones(2, bool), 6, 4)


def decision_table():
    """Ten models sharing a large per-instance difficulty; offsets from 0 to 1; one failure."""
    rng = np.random.default_rng(21)
    base = 2.0 * rng.standard_normal(14)
    offsets = np.array([0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 1.0, 0.0])
    losses = base + offsets[:, None] + 0.3 * rng.standard_normal((10, 14))
    losses[6, 4] = np.nan  # a failed instance
    mask = np.ones(losses.shape, bool)
    mask[3, 12:] = False  # ragged: paired tests use the pairs, Friedman/bootstrap the common ones
    mask[9, 2:] = False  # a dead model with two instances
    alive = np.ones(10, bool)
    alive[9] = False
    return losses, mask, alive


def expected_keep(name, correction, losses, mask, alive, statistic="mean"):
    """The rule's decision rebuilt from the jrobust._src.stats functions."""
    rows = np.flatnonzero(alive)
    losses, mask = losses[rows], mask[rows]
    stat = get_statistic(statistic)
    values = stat(losses, mask)
    best = int(np.argmin(values))
    worse = values > values[best]
    if name in TESTS:
        p = two_sample_pvalues(name, losses, mask, best)
    elif name in PAIRED_TESTS:
        p = paired_pvalues(name, losses, mask, best)
    elif name == "friedman":
        result = friedman(losses, mask, best)
        p = result.posthoc if result.pvalue < 0.05 else np.ones(len(rows))
    else:
        result = paired_bootstrap(losses, mask, stat, best)
        p, worse = result.pvalue, worse & (result.low > 0)
    others = np.arange(len(rows)) != best
    adjusted = np.ones(len(rows))
    adjusted[others] = adjust_pvalues(p[others], correction)
    keep = np.zeros(len(alive), bool)
    keep[rows] = ~((adjusted < 0.05) & worse)
    return keep


@pytest.mark.parametrize("correction", CORRECTIONS)
@pytest.mark.parametrize("name", TEST_RULES)
def test_rule_decisions_follow_the_statistics(name, correction):
    losses, mask, alive = decision_table()
    rule = get_rule(name, correction=correction)
    warmup = rule.min_warmup
    out = rule.select(losses, mask, alive, warmup + 1, warmup, "mean")
    np.testing.assert_array_equal(out, expected_keep(name, correction, losses, mask, alive))
    assert out[0] and not out[9]


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("name", TEST_RULES)
def test_degenerate_tables_remove_nothing_or_the_sure_losers(name):
    rule = get_rule(name, correction="holm")
    warmup = rule.min_warmup
    alive = np.ones(4, bool)
    for table in (np.ones((4, 8)), np.full((4, 8), np.nan), np.tile(np.arange(8.0), (4, 1))):
        for statistic in ("mean", "std", "median"):
            out = rule.select(table, full(table), alive, warmup + 1, warmup, statistic, "mean")
            assert out.all(), (table, statistic)
    shifted = np.arange(4.0)[:, None] + np.zeros((4, 8))  # constant rows 0 < 1 < 2 < 3
    out = rule.select(shifted, full(shifted), alive, warmup + 1, warmup, "mean")
    assert out.tolist() == ([True] * 4 if name in SPREAD_TESTS else [True, False, False, False])


def planted_pvalue_table(pvalues, n=10):
    """Row 0 and rows whose paired t-test against it has exactly the given two-sided p-values."""
    z = standardized(n, seed=5)  # mean 0, sd 1 exactly: t = shift * sqrt(n)
    shifts = scipy.stats.t.isf(np.asarray(pvalues) / 2, n - 1) / np.sqrt(n)
    base = 3.0 * np.random.default_rng(6).standard_normal(n)
    return np.vstack([base, base + shifts[:, None] + z])


def test_corrections_remove_fewer_models():
    p = [0.001, 0.005, 0.009, 0.03, 0.04, 0.3, 0.6]
    losses = planted_pvalue_table(p)
    np.testing.assert_allclose(paired_pvalues("ttest_paired", losses, None, 0)[1:], p, rtol=1e-6)
    # m = 7 comparisons. None: the five p < 0.05. Bonferroni: p < 0.05 / 7 = 0.0071, two.
    # Holm: 7 * 0.001 = 0.007, 6 * 0.005 = 0.03, 5 * 0.009 = 0.045 < 0.05, then 4 * 0.03 = 0.12
    # stops: three.
    removed = {
        correction: np.flatnonzero(
            ~kept_mask(PairedTest("ttest_paired", correction=correction), losses)
        ).tolist()
        for correction in CORRECTIONS
    }
    assert removed == {None: [1, 2, 3, 4, 5], "holm": [1, 2, 3], "bonferroni": [1, 2]}


def kept_mask(rule, losses):
    warmup = rule.min_warmup
    return rule.select(losses, full(losses), np.ones(len(losses), bool), warmup + 1, warmup)


def test_bootstrap_bonferroni_is_the_wider_interval():
    losses, mask, alive = decision_table()
    rows = np.flatnonzero(alive)
    m = len(rows) - 1
    out = Bootstrap(correction="bonferroni").select(losses, mask, alive, 5, 4, "std", "mean")
    best = int(np.argmin(get_statistic("mean")(losses[rows], mask[rows])))
    wide = paired_bootstrap(losses[rows], mask[rows], "std", best, alpha=0.05 / m)
    std = get_statistic("std")(losses[rows], mask[rows])
    np.testing.assert_array_equal(~out[rows], (wide.low > 0) & (std > std[best]))
    narrow = Bootstrap().select(losses, mask, alive, 5, 4, "std", "mean")
    assert (~out <= ~narrow).all()  # Bonferroni removes a subset


def test_friedman_posthoc_runs_only_after_the_omnibus_rejects():
    # Losses that are ranks: five models, six blocks (from a random permutation per block).
    x = np.array(
        [
            [4, 1, 4, 3, 4, 2],
            [3, 4, 0, 0, 2, 1],
            [1, 2, 1, 1, 3, 4],
            [2, 3, 3, 4, 1, 3],
            [0, 0, 2, 2, 0, 0],
        ],
        dtype=float,
    )
    result = friedman(x, None, reference=4)  # row 4 has the lowest mean
    assert result.pvalue == pytest.approx(0.0916, abs=1e-4)  # T1 = 8 on 4 df: no rejection
    assert result.posthoc[0] < 0.01  # although Conover alone would separate row 0
    assert kept_mask(Friedman(), x).all()
    # At alpha = 0.1 the omnibus rejects; Conover p: row 0 0.0097, row 3 0.0236, rows 1, 2 > 0.1.
    assert np.flatnonzero(kept_mask(Friedman(alpha=0.1), x)).tolist() == [1, 2, 4]
    nemenyi = friedman(x, None, reference=4, posthoc="nemenyi").posthoc
    want = np.flatnonzero(~((nemenyi < 0.1) & (np.arange(5) != 4))).tolist()
    assert np.flatnonzero(kept_mask(Friedman(alpha=0.1, posthoc="nemenyi"), x)).tolist() == want
    assert len(want) > 3  # Nemenyi is more conservative: it keeps row 3


def shared_difficulty_table(seed=0, n=40):
    """Instance difficulty (sd 3) shared by six models; the offsets are small beside it.

    Models 0 and 1 have equal means, 1 with more noise of its own (paired-noisier); models 2-5
    are worse by 0.5, 0.75, 1 and 1.5, with little noise of their own.
    """
    rng = np.random.default_rng(seed)
    base = 3.0 * rng.standard_normal(n)
    offset = np.array([0.0, 0.0, 0.5, 0.75, 1.0, 1.5])
    noise = np.array([0.02, 0.3, 0.02, 0.02, 0.02, 0.02])
    return 10 + base + offset[:, None] + noise[:, None] * rng.standard_normal((6, n))


def planted_race(rule):
    losses = shared_difficulty_table()
    return jrobust.race(
        6,
        evaluator=lambda m, i: losses[m, i],
        rule=rule,
        statistic="mean",
        warmup=5,
        max_instances=30,
        n_winners=2,
    )


@pytest.fixture(scope="module")
def welch_race():
    return planted_race(get_rule("welch"))


@pytest.mark.parametrize("name", [*PAIRED_RULES, "bootstrap"])
def test_paired_rules_race_with_fewer_trainings_than_welch(name, welch_race):
    result = planted_race(get_rule(name))
    # 6 models x 5 warm-up instances, then one more each: the first test removes models 2-5.
    assert result.n_trainings == 36
    assert [e for e in result.history["eliminated"] if e] == [[2, 3, 4, 5]]
    assert sorted(result.winners) == [0, 1]  # the two models of equal mean
    # Welch sees the shared difficulty (sd 3) as noise: after 30 instances it has removed at most
    # the worst model, training about five times as many instances.
    assert welch_race.n_trainings >= 150 > 4 * result.n_trainings
    assert sum(map(len, welch_race.history["eliminated"])) <= 1
    assert 0 in welch_race.winners
