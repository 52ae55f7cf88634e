"""Statistics and two-sample tests of jrobust._src.stats against NumPy/SciPy, row by row."""

import itertools
import warnings

import numpy as np
import pytest
import scipy.stats

from jrobust._src.stats import (
    ALTERNATIVES,
    CORRECTIONS,
    LOCATION_TESTS,
    PAIRED_TESTS,
    POSTHOCS,
    SPREAD_TESTS,
    STATISTICS,
    TESTS,
    Statistic,
    adjust_pvalues,
    friedman,
    get_statistic,
    paired_bootstrap,
    paired_pvalues,
    quantile,
    two_sample_pvalues,
)

# Row-by-row references on finite 1-D samples with at least one value.
REFERENCE = {
    "mean": np.mean,
    "median": np.median,
    "std": lambda x: np.std(x, ddof=1) if x.size > 1 else 0.0,
    "min": np.min,
    "max": np.max,
    "q1": lambda x: np.percentile(x, 25),
    "q3": lambda x: np.percentile(x, 75),
    "q3+iqr": lambda x: 2 * np.percentile(x, 75) - np.percentile(x, 25),
    "iqr": lambda x: np.percentile(x, 75) - np.percentile(x, 25),
    "pd": lambda x: np.percentile(x, 90) - np.percentile(x, 10),
}
COUNTS = (9, 5, 1, 0, 3, 2, 8, 4)


def ragged_table(seed=0, counts=COUNTS, n=9):
    """Losses with a ragged mask; untrained cells hold junk that must be ignored."""
    rng = np.random.default_rng(seed)
    losses = rng.lognormal(size=(len(counts), n))
    mask = np.arange(n)[None, :] < np.asarray(counts)[:, None]
    losses[~mask] = rng.choice([np.nan, np.inf, -1e300], size=(~mask).sum())
    return losses, mask


def expected_rows(fn, losses, mask):
    return np.array(
        [fn(row[m]) if m.any() else np.inf for row, m in zip(losses, mask, strict=True)]
    )


@pytest.mark.parametrize("name", STATISTICS)
def test_statistic_matches_numpy_row_by_row(name):
    losses, mask = ragged_table()
    got = get_statistic(name)(losses, mask)
    assert got.dtype == np.float64 and got.shape == (len(COUNTS),)
    np.testing.assert_allclose(got, expected_rows(REFERENCE[name], losses, mask), rtol=1e-12)
    assert got[COUNTS.index(0)] == np.inf


@pytest.mark.parametrize("name", STATISTICS)
def test_statistic_ignores_untrained_cells_and_defaults_to_all_trained(name):
    losses, mask = ragged_table()
    junk = np.where(mask, losses, 123.0)
    stat = get_statistic(name)
    np.testing.assert_array_equal(stat(losses, mask), stat(junk, mask))
    full = np.abs(losses[:1, :])
    np.testing.assert_array_equal(stat(full), stat(full, np.ones_like(full, bool)))


@pytest.mark.parametrize("name", STATISTICS)
def test_failures_count_as_inf_and_never_give_nan(name):
    losses, mask = ragged_table()
    losses[0, 4] = -np.inf  # one failure in rows 0 and 6 (the reference then has no NaN trap)
    losses[6, 2] = np.nan
    losses[4, :3] = np.nan  # row 4: all 3 failed
    got = get_statistic(name)(losses, mask)
    assert not np.isnan(got).any()
    assert got[4] == np.inf
    filled = np.where(np.isfinite(losses), losses, np.inf)
    for row in (0, 6):
        with np.errstate(all="ignore"):
            want = REFERENCE[name](filled[row][mask[row]])
        if np.isnan(want):  # NumPy gives NaN for inf - inf; the library's answer is +inf
            want = np.inf
        assert got[row] == pytest.approx(want, rel=1e-12), row


def test_failure_semantics_by_statistic():
    row = np.array([[1.0, 2.0, 3.0, 4.0, np.nan]])
    assert get_statistic("mean")(row)[0] == np.inf
    assert get_statistic("std")(row)[0] == np.inf
    assert get_statistic("max")(row)[0] == np.inf
    assert get_statistic("min")(row)[0] == 1.0
    assert get_statistic("median")(row)[0] == 3.0  # fewer than half failed: finite
    # Two of five failed: NumPy's lerp would give NaN here (inf * 0); the median is 3.
    assert get_statistic("median")(np.array([[1.0, 2.0, 3.0, np.inf, np.nan]]))[0] == 3.0
    assert get_statistic("median")(np.array([[1.0, 2.0, np.nan, np.inf]]))[0] == np.inf
    assert get_statistic("q3")(np.array([[1.0, 2.0, 3.0, 4.0, np.nan]]))[0] == 4.0
    assert get_statistic("pd")(row)[0] == np.inf


def test_std_of_one_sample_is_zero():
    assert get_statistic("std")(np.array([[5.0, 9.0]]), np.array([[True, False]]))[0] == 0.0


@pytest.mark.parametrize("p", [0.0, 0.1, 0.25, 0.5, 0.9, 0.975, 1.0])
def test_quantile_statistic_and_percentile_names(p):
    losses, mask = ragged_table(seed=3)
    want = expected_rows(lambda x: np.percentile(x, 100 * p), losses, mask)
    np.testing.assert_allclose(quantile(p)(losses, mask), want, rtol=1e-12)
    np.testing.assert_allclose(get_statistic(f"q{100 * p:g}")(losses, mask), want, rtol=1e-12)
    assert quantile(p).name == f"q{100 * p:g}"


def test_percentile_name_parsing():
    losses, mask = ragged_table(seed=4)
    np.testing.assert_array_equal(get_statistic("q90")(losses, mask), quantile(0.9)(losses, mask))
    np.testing.assert_array_equal(get_statistic("q03")(losses, mask), quantile(0.03)(losses, mask))
    # "q1"/"q3" are the quartiles, not the 1st/3rd percentiles.
    np.testing.assert_array_equal(get_statistic("q3")(losses, mask), quantile(0.75)(losses, mask))
    np.testing.assert_array_equal(get_statistic("q1")(losses, mask), quantile(0.25)(losses, mask))


def test_user_callable_statistic():
    losses, mask = ragged_table(seed=5)
    losses[1, 0] = np.nan
    stat = get_statistic(np.ptp)
    assert isinstance(stat, Statistic) and stat.name == "ptp"
    filled = np.where(np.isfinite(losses), losses, np.inf)
    with np.errstate(all="ignore"):
        want = expected_rows(np.ptp, filled, mask)
    np.testing.assert_array_equal(stat(losses, mask), np.where(np.isnan(want), np.inf, want))
    assert get_statistic(lambda x: np.nan)(losses, mask).tolist() == [np.inf] * len(COUNTS)
    assert get_statistic(stat) is stat


@pytest.mark.parametrize("bad", ["average", "q101", "qx", "q-5", ""])
def test_unknown_statistic_lists_names(bad):
    with pytest.raises(ValueError, match="mean, median, std"):
        get_statistic(bad)


def test_statistic_input_validation():
    with pytest.raises(ValueError, match="2-D"):
        get_statistic("mean")(np.zeros(3))
    with pytest.raises(ValueError, match="mask shape"):
        get_statistic("mean")(np.zeros((2, 3)), np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="bool"):
        get_statistic("mean")(np.zeros((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        quantile(1.5)
    with pytest.raises(TypeError):
        get_statistic(3)


# --- two-sample tests -------------------------------------------------------------------------


def scipy_pvalue(test, x, y, alternative):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if test == "welch":
            return scipy.stats.ttest_ind(x, y, equal_var=False, alternative=alternative).pvalue
        if test == "mannwhitney":
            return scipy.stats.mannwhitneyu(x, y, alternative=alternative).pvalue
        if test == "ks":
            return scipy.stats.ks_2samp(x, y, alternative=alternative).pvalue
        return getattr(scipy.stats, test)(x, y).pvalue


def pvalue_table():
    """Ragged rows, some with ties (rounded), some with failures; reference row 1."""
    losses, mask = ragged_table(seed=7, counts=(9, 9, 6, 6, 1, 9, 4, 2, 9), n=9)
    losses[[2, 5]] = np.round(losses[[2, 5]], 1)  # ties for Mann-Whitney's method choice
    losses[5, 3] = np.nan
    losses[6, 1] = np.inf
    return losses, mask


CASES = [(t, a) for t in LOCATION_TESTS for a in ("two-sided", "less", "greater")] + [
    (t, "two-sided") for t in SPREAD_TESTS
]


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("test,alternative", CASES)
def test_pvalues_match_scipy_pair_by_pair(test, alternative):
    losses, mask = pvalue_table()
    finite = losses[mask & np.isfinite(losses)]
    worst = finite.max() + 10 * (finite.max() - finite.min() + 1)
    filled = np.where(np.isfinite(losses), losses, worst)
    got = two_sample_pvalues(test, losses, mask, reference=1, alternative=alternative)
    reference = filled[1][mask[1]]
    for i, (row, m) in enumerate(zip(filled, mask, strict=True)):
        if i == 1 or m.sum() < 2:
            assert got[i] == 1.0, i
        else:
            want = scipy_pvalue(test, row[m], reference, alternative)
            assert got[i] == pytest.approx(want, rel=1e-10, abs=1e-300), (i, got[i], want)
    assert ((got >= 0) & (got <= 1)).all() and (got < 1).sum() >= 4


@pytest.mark.parametrize("test", TESTS)
def test_diverging_model_is_clearly_different(test):
    rng = np.random.default_rng(1)
    losses = 1 + 0.1 * rng.standard_normal((2, 12))
    losses[1, :6] = np.nan  # half the instances diverged
    assert two_sample_pvalues(test, losses, None, reference=0)[1] < 0.1


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("test", TESTS)
def test_constant_samples(test):
    ref = [1.0, 1.0, 1.0, 1.0]
    losses = np.array([ref, [1.0] * 4, [0.1] * 4, [3.0] * 4])
    p = two_sample_pvalues(test, losses, None, reference=0)
    location = test in LOCATION_TESTS
    np.testing.assert_array_equal(p, [1.0, 1.0, 0.0, 0.0] if location else [1.0] * 4)
    if location:
        greater = two_sample_pvalues(test, losses, None, reference=0, alternative="greater")
        less = two_sample_pvalues(test, losses, None, reference=0, alternative="less")
        np.testing.assert_array_equal(greater, [1.0, 1.0, 1.0, 0.0])
        np.testing.assert_array_equal(less, [1.0, 1.0, 0.0, 1.0])


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("test", TESTS)
def test_constant_against_varying_sample_matches_scipy(test):
    losses = np.array([[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0]])
    want = scipy_pvalue(test, losses[1], losses[0], "two-sided")
    with np.errstate(all="ignore"):
        want = 1.0 if np.isnan(want) else want
    assert two_sample_pvalues(test, losses, None, 0)[1] == pytest.approx(want, rel=1e-10)


def test_reference_with_one_sample_rejects_nothing():
    losses, mask = pvalue_table()
    assert two_sample_pvalues("welch", losses, mask, reference=4).tolist() == [1.0] * 9
    assert two_sample_pvalues("welch", losses, mask, reference=-1)[-1] == 1.0


def test_two_sample_validation():
    losses, mask = pvalue_table()
    with pytest.raises(ValueError, match="welch, mannwhitney, ks, bartlett, levene, fligner"):
        two_sample_pvalues("ttest", losses, mask, 0)
    for spread in SPREAD_TESTS:
        with pytest.raises(ValueError, match="two-sided only"):
            two_sample_pvalues(spread, losses, mask, 0, alternative="greater")
    with pytest.raises(ValueError, match="alternative"):
        two_sample_pvalues("welch", losses, mask, 0, alternative="bigger")
    with pytest.raises(ValueError, match="not a row"):
        two_sample_pvalues("welch", losses, mask, 9)


# --- paired tests -----------------------------------------------------------------------------


def paired_table():
    """Reference row 0 with holes in its mask; rows built to reach every branch of the tests.

    Losses lie on a grid of 1/64 so that differences are exact and ties stay ties.
    """
    rng = np.random.default_rng(11)
    n = 60
    grid = lambda x: np.round(64 * x) / 64
    ref = grid(5 + 2 * rng.standard_normal(n))
    mask = np.ones((12, n), dtype=bool)
    mask[0, [3, 17, 40]] = False  # holes in the reference: never pairs
    losses = np.empty((12, n))
    losses[0] = ref
    losses[1] = ref + 0.5 + rng.standard_normal(n)  # 56 pairs, no ties: asymptotic
    mask[1, 50] = False
    losses[2] = ref + 0.5 + rng.standard_normal(n)
    mask[2, 30:] = False  # 28 pairs, no ties: exact
    losses[3] = ref + grid(np.round(rng.standard_normal(n)) / 2)  # ties and zeros
    mask[3, 10:] = False  # 9 pairs (one a hole of the reference): sign-flip test
    losses[4] = ref + np.round(rng.standard_normal(n)) / 4 + 0.25  # ties and zeros, 13 pairs
    mask[4, 14:] = False
    losses[5] = ref + np.round(2 * rng.standard_normal(n)) / 2 + 0.5  # ties, 20 pairs: normal
    mask[5] = False
    mask[5, 20:41] = True
    losses[6] = ref + 1.0 + 0.5 * rng.standard_normal(n)  # a failed instance among 10 pairs
    losses[6, 2] = np.nan
    mask[6, 10:] = False
    losses[7] = ref + 1.0  # one pair only
    mask[7] = False
    mask[7, [3, 5]] = True
    losses[8] = ref + grid(rng.standard_normal(n))  # fails with the reference: a zero pair
    losses[[0, 8], 50] = np.inf  # (no other row has trained instance 50)
    mask[8, :44] = mask[8, 56:] = False
    losses[9] = ref  # all differences zero
    mask[9, 8:] = False
    losses[10] = ref + 0.25  # a constant shift
    mask[10, 8:] = False
    losses[11] = rng.standard_normal(n)  # junk in untrained cells must be ignored
    mask[11, 6:] = False
    losses[11, 6:] = np.nan
    losses[~mask] = np.where(rng.random((~mask).sum()) < 0.5, np.nan, 1e300)
    return losses, mask


def filled_like_library(losses, mask):
    finite = losses[mask & np.isfinite(losses)]
    return np.where(
        np.isfinite(losses), losses, finite.max() + 10 * (finite.max() - finite.min() + 1)
    )


def signed_rank_by_enumeration(d, alternative):
    """Wilcoxon's R+ against all 2^n sign flips of the nonzero differences (no shortcut)."""
    d = d[d != 0]
    ranks = scipy.stats.rankdata(np.abs(d))
    signs = np.array(list(itertools.product([0, 1], repeat=d.size)))
    null = signs @ ranks
    observed = ranks[d > 0].sum()
    less, greater = (null <= observed + 1e-9).mean(), (null >= observed - 1e-9).mean()
    return {"less": less, "greater": greater}.get(alternative, min(1.0, 2 * min(less, greater)))


def scipy_paired(test, x, y, alternative):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if test == "wilcoxon":
            p = scipy.stats.wilcoxon(x, y, alternative=alternative).pvalue
        else:
            p = scipy.stats.ttest_rel(x, y, alternative=alternative).pvalue
    return 1.0 if np.isnan(p) else p


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("test", PAIRED_TESTS)
def test_paired_pvalues_match_scipy_pair_by_pair(test, alternative):
    losses, mask = paired_table()
    got = paired_pvalues(test, losses, mask, reference=0, alternative=alternative)
    filled = filled_like_library(losses, mask)
    assert got.shape == (12,) and got[0] == 1.0
    for i in range(1, 12):
        pairs = mask[i] & mask[0]
        x, y = filled[i][pairs], filled[0][pairs]
        if pairs.sum() < 2:
            want = 1.0
        elif test == "wilcoxon" and i == 4:  # ties, 13 pairs: SciPy takes seconds here
            want = signed_rank_by_enumeration(x - y, alternative)
        else:
            want = scipy_paired(test, x, y, alternative)
        assert got[i] == pytest.approx(want, rel=1e-9, abs=1e-300), (i, got[i], want)
    assert ((got >= 0) & (got <= 1)).all()
    assert got[9] == 1.0 and got[7] == 1.0  # all differences zero; one pair
    if alternative != "less":  # the shifted rows are found worse
        assert (got[[1, 2, 10]] < 0.05).all(), got
    if test == "ttest_paired":  # a sure shift: p = 0 in its direction
        assert got[10] == (1.0 if alternative == "less" else 0.0)
    else:  # seven tied positive differences: 1 (or 2, two-sided) of the 2^7 sign patterns
        assert got[10] == {"less": 1.0, "greater": 1 / 128, "two-sided": 2 / 128}[alternative]
        # One failure is the largest difference: ranks see it, where it swamps the t-test's sd.
        assert got[6] < 0.05 or alternative == "less"


def test_signed_rank_enumeration_agrees_with_scipy_on_small_ties():
    d = np.array([0.5, -0.5, 1.0, 1.0, 0.0, 1.5, 2.0, -1.0])  # ties and a zero: SciPy permutes
    for alternative in ALTERNATIVES:
        assert signed_rank_by_enumeration(d, alternative) == pytest.approx(
            scipy_paired("wilcoxon", d, np.zeros_like(d), alternative), rel=1e-12
        )


def test_wilcoxon_hand_values():
    base = np.array([3.0, 9.0, 1.0, 7.0, 5.0, 2.0])
    x = np.stack(
        [base, base + np.array([1, 2, 3, 4, 5, 6]) / 8, base - np.array([1, -2, 3, 4, 5, 6]) / 8]
    )
    p = paired_pvalues("wilcoxon", x, None, reference=0)
    # Six positive differences: R+ = 21 is the largest of 2^6 sign patterns, p = 2/64.
    assert p[1] == 2 / 64
    # One positive of rank 2: R+ = 2, P(R+ <= 2) = #{{}, {1}, {2}} / 64, p = 6/64.
    assert p[2] == 6 / 64
    assert paired_pvalues("wilcoxon", x, None, 0, "greater")[1] == 1 / 64


@pytest.mark.parametrize("test", PAIRED_TESTS)
def test_paired_diverging_model_is_clearly_worse(test):
    rng = np.random.default_rng(1)
    base = 5 * rng.standard_normal(12)
    losses = base + 0.1 * rng.standard_normal((2, 12))
    losses[1, ::2] = np.nan  # half the instances diverged
    assert paired_pvalues(test, losses, None, reference=0, alternative="greater")[1] < 0.05


@pytest.mark.parametrize("test", PAIRED_TESTS)
def test_pairing_removes_shared_instance_variation(test):
    rng = np.random.default_rng(2)
    base = 10 * rng.standard_normal(8)  # instance difficulty dwarfs the 0.5 offset...
    losses = np.stack([base, base + 0.5 + 0.05 * rng.standard_normal(8)])
    assert paired_pvalues(test, losses, None, 0)[1] < 0.01  # ...paired, it is plain
    assert two_sample_pvalues("welch", losses, None, 0)[1] > 0.5


def test_paired_validation():
    losses, mask = paired_table()
    with pytest.raises(ValueError, match="wilcoxon, ttest_paired"):
        paired_pvalues("sign", losses, mask, 0)
    with pytest.raises(ValueError, match="alternative"):
        paired_pvalues("wilcoxon", losses, mask, 0, alternative="bigger")
    with pytest.raises(ValueError, match="not a row"):
        paired_pvalues("wilcoxon", losses, mask, 12)
    with pytest.raises(ValueError, match="mask shape"):
        paired_pvalues("wilcoxon", losses, mask[:, :3], 0)


# --- Friedman ---------------------------------------------------------------------------------


def friedman_table():
    """Five models, ragged masks (blocks: the instances all trained), ties and one failure."""
    rng = np.random.default_rng(5)
    losses = np.round(rng.normal(0, 1, (5, 14)) + np.arange(5)[:, None] * 0.4, 0)
    mask = np.ones_like(losses, dtype=bool)
    mask[1, 12:] = False
    mask[3, [0, 5]] = False
    losses[~mask] = np.nan  # untrained: ignored, not failed
    losses[2, 7] = np.nan  # failed: worst in its block
    return losses, mask


@pytest.mark.filterwarnings("error")
def test_friedman_omnibus_matches_scipy():
    losses, mask = friedman_table()
    blocks = mask.all(axis=0)
    filled = filled_like_library(losses, mask)[:, blocks]
    want = scipy.stats.friedmanchisquare(*filled)
    for posthoc in POSTHOCS:
        got = friedman(losses, mask, reference=0, posthoc=posthoc)
        assert got.n_blocks == blocks.sum() == 10
        assert got.statistic == pytest.approx(want.statistic, rel=1e-12)
        assert got.pvalue == pytest.approx(want.pvalue, rel=1e-10)
    # Fully-trained, tie-free tables too, for several sizes.
    for k in (3, 4, 8):
        x = np.random.default_rng(k).standard_normal((k, 7))
        want = scipy.stats.friedmanchisquare(*x)
        got = friedman(x, None, reference=1)
        assert (got.statistic, got.pvalue) == pytest.approx(
            (want.statistic, want.pvalue), rel=1e-10
        )


def test_friedman_with_two_models_is_the_sign_test_chi_square():
    # SciPy needs 3 groups; with k = 2, T1 = (wins - losses)^2 / n.
    x = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], [2.0, 3.0, 4.0, 5.0, 6.0, 5.0, 8.0]])
    got = friedman(x, None, reference=0)
    assert got.statistic == pytest.approx((6 - 1) ** 2 / 7)
    assert got.pvalue == pytest.approx(scipy.stats.chi2.sf(25 / 7, 1))


def conover_by_hand(x, reference):
    """Conover (1980/1999) post hoc in its older form, written out block by block."""
    k, n = x.shape
    ranks = np.column_stack([scipy.stats.rankdata(x[:, j]) for j in range(n)])
    rank_sums = ranks.sum(axis=1)
    a1, c1 = (ranks**2).sum(), n * k * (k + 1) ** 2 / 4
    t1 = (k - 1) * ((rank_sums**2).sum() - n * c1) / (a1 - c1)
    se = np.sqrt(2 * n * (a1 - c1) * (1 - t1 / (n * (k - 1))) / ((n - 1) * (k - 1)))
    return np.array(
        [
            2 * scipy.stats.t.sf(abs(r - rank_sums[reference]) / se, (n - 1) * (k - 1))
            for r in rank_sums
        ]
    )


def nemenyi_by_hand(x, reference):
    """Nemenyi: mean ranks over sqrt(k (k + 1) / (6 n)), times sqrt(2), studentized range."""
    k, n = x.shape
    mean_ranks = np.column_stack([scipy.stats.rankdata(x[:, j]) for j in range(n)]).mean(axis=1)
    z = np.abs(mean_ranks - mean_ranks[reference]) / np.sqrt(k * (k + 1) / (6 * n))
    return np.array([scipy.stats.studentized_range.sf(np.sqrt(2) * zi, k, np.inf) for zi in z])


@pytest.mark.filterwarnings("error")
def test_posthoc_pvalues_against_hand_computation():
    x = np.array(
        [
            [1.0, 2.0, 1.5, 3.0, 2.2],
            [1.2, 2.1, 1.4, 3.2, 2.0],
            [2.0, 3.0, 2.5, 4.0, 2.1],
            [2.5, 2.6, 2.8, 3.9, 2.1],  # ties row 2 in the last block
        ]
    )
    for reference in (0, 1):
        conover = friedman(x, None, reference, "conover").posthoc
        nemenyi = friedman(x, None, reference, "nemenyi").posthoc
        np.testing.assert_allclose(conover, conover_by_hand(x, reference), rtol=1e-10)
        np.testing.assert_allclose(nemenyi, nemenyi_by_hand(x, reference), rtol=1e-6)
        assert conover[reference] == nemenyi[reference] == 1.0
        assert (nemenyi >= conover).all()  # all-pairs control is the more conservative here


def test_posthoc_hand_values():
    # Conover, k = 3 models, n = 2 blocks ranking them (1, 2, 3) and (1, 3, 2): R = (2, 5, 5),
    # A1 = 2 * 14 = 28, n A1 - sum R^2 = 56 - 54 = 2, se = sqrt(2 * 2 / ((n-1)(k-1))) = sqrt(2),
    # t = 3 / sqrt(2) on 2 degrees of freedom, where 2 t.sf(t, 2) = 1 - t / sqrt(t^2 + 2)
    # = 1 - sqrt(4.5 / 6.5) = 1 - 3 / sqrt(13) = 0.167950.
    x = np.array([[1.0, 1.0], [2.0, 3.0], [3.0, 2.0]])
    p = friedman(x, None, reference=0, posthoc="conover").posthoc
    assert p.tolist() == pytest.approx([1.0, 1 - 3 / np.sqrt(13), 1 - 3 / np.sqrt(13)], rel=1e-12)
    # Nemenyi, k = 2, n = 4 blocks all won by row 0: R = (4, 8), q = 4 / sqrt(4 * 2 * 3 / 12)
    # = 2 sqrt(2); the range of two normals is sqrt(2) |Z|, so p = P(|Z| > 2) = 0.0455003.
    x = np.array([[1.0, 2.0, 3.0, 4.0], [1.5, 2.5, 3.5, 4.5]])
    p = friedman(x, None, reference=0, posthoc="nemenyi").posthoc
    assert p[1] == pytest.approx(2 * scipy.stats.norm.sf(2.0), rel=1e-6)
    assert p[1] == pytest.approx(0.0455003, abs=1e-7)
    # Every block ranks the rows alike: Conover's error term is 0, so differing sums give p = 0.
    assert friedman(x, None, reference=0).posthoc.tolist() == [1.0, 0.0]


@pytest.mark.filterwarnings("error")
def test_friedman_degenerate_tables():
    equal = np.ones((3, 5))
    for posthoc in POSTHOCS:
        result = friedman(equal, None, 0, posthoc)
        assert (result.statistic, result.pvalue) == (0.0, 1.0)
        assert result.posthoc.tolist() == [1.0] * 3
    few = np.arange(6.0).reshape(3, 2)
    mask = np.array([[True, False], [True, True], [False, True]])  # no common block
    assert friedman(few, mask, 0).n_blocks == 0 and friedman(few, mask, 0).pvalue == 1.0
    assert friedman(few[:1], None, 0).pvalue == 1.0  # one model: nothing to compare
    all_failed = np.full((3, 4), np.nan)
    assert friedman(all_failed, None, 1).posthoc.tolist() == [1.0] * 3


def test_friedman_validation():
    with pytest.raises(ValueError, match="conover, nemenyi"):
        friedman(np.ones((3, 3)), None, 0, posthoc="tukey")
    with pytest.raises(ValueError, match="not a row"):
        friedman(np.ones((3, 3)), None, 3)


# --- multiple comparisons ---------------------------------------------------------------------


def test_holm_and_bonferroni_worked_example():
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04; the running
    # maximum makes the last 0.06, so in input order [0.03, 0.06, 0.06, 0.02].
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    # Bonferroni: 4 p, capped at 1.
    np.testing.assert_allclose(
        adjust_pvalues(p, "bonferroni"), [0.04, 0.16, 0.12, 0.02], rtol=1e-12
    )
    np.testing.assert_array_equal(adjust_pvalues(p, None), p)
    assert adjust_pvalues([0.3, 0.6], "bonferroni").tolist() == [0.6, 1.0]
    assert adjust_pvalues([0.3, 0.6], "holm").tolist() == [0.6, 0.6]
    assert adjust_pvalues([], "holm").shape == (0,)


def holm_rejections(p, alpha):
    """Holm's procedure as usually stated: reject while p_(j) < alpha / (m - j + 1)."""
    order, m = np.argsort(p), len(p)
    reject = np.zeros(m, dtype=bool)
    for j, i in enumerate(order):
        if p[i] >= alpha / (m - j):
            break
        reject[i] = True
    return reject


@pytest.mark.parametrize("method", ["holm", "bonferroni"])
def test_adjusted_pvalues_are_monotone_bounded_and_order_invariant(method):
    rng = np.random.default_rng(3)
    for m in (1, 2, 5, 17):
        p = rng.random(m) ** 3
        p[: m // 3] = p[-1]  # ties
        adjusted = adjust_pvalues(p, method)
        assert ((adjusted >= p) & (adjusted <= 1)).all()
        order = np.argsort(p, kind="stable")
        assert (np.diff(adjusted[order]) >= 0).all()  # monotone in p
        perm = rng.permutation(m)
        np.testing.assert_array_equal(adjust_pvalues(p[perm], method), adjusted[perm])
        for alpha in (0.01, 0.05, 0.2):
            if method == "holm":
                np.testing.assert_array_equal(adjusted < alpha, holm_rejections(p, alpha))
            else:
                np.testing.assert_array_equal(adjusted < alpha, p < alpha / m)
    assert (adjust_pvalues(p, "holm") <= adjust_pvalues(p, "bonferroni")).all()


def test_adjust_pvalues_validation():
    assert CORRECTIONS == (None, "holm", "bonferroni")
    with pytest.raises(ValueError, match="'holm' or 'bonferroni'"):
        adjust_pvalues([0.1], "fdr")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        adjust_pvalues([0.1, np.nan], "holm")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        adjust_pvalues([1.5], None)
    with pytest.raises(ValueError, match="1-D"):
        adjust_pvalues([[0.1]], "holm")


# --- paired bootstrap -------------------------------------------------------------------------


def spread_table(n=20):
    """Row 0 narrow; row 1 an exact copy; row 2 five times as wide; row 3 row 0 shifted."""
    rng = np.random.default_rng(8)
    z, w = standardized_pair(rng, n)
    return np.stack([1 + 0.1 * z, 1 + 0.1 * z, 1 + 0.5 * w, 1.3 + 0.1 * z])


def standardized_pair(rng, n):
    z = rng.standard_normal((2, n))
    return (z - z.mean(axis=1, keepdims=True)) / z.std(axis=1, ddof=1, keepdims=True)


def test_bootstrap_is_deterministic_given_the_seed():
    losses = spread_table()
    a = paired_bootstrap(losses, None, "std", reference=0, n_resamples=200, seed=7)
    b = paired_bootstrap(losses, None, "std", reference=0, n_resamples=200, seed=7)
    c = paired_bootstrap(losses, None, "std", reference=0, n_resamples=200, seed=8)
    for x, y in zip(a[:3], b[:3], strict=True):
        np.testing.assert_array_equal(x, y)
    assert a.low[2] != c.low[2]
    state = np.random.get_state()[1].copy()  # noqa: NPY002 (checking the legacy global RNG)
    paired_bootstrap(losses, None, "std", reference=0, n_resamples=50)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002


@pytest.mark.parametrize("statistic", ["std", "pd", "q3+iqr"])
def test_bootstrap_flags_wider_model_and_keeps_identical_one(statistic):
    result = paired_bootstrap(spread_table(), None, statistic, reference=0)
    assert result.n_instances == 20
    assert (result.low[0], result.high[0], result.pvalue[0]) == (0.0, 0.0, 1.0)
    assert (result.low[1], result.high[1], result.pvalue[1]) == (0.0, 0.0, 1.0)  # the copy
    assert result.low[2] > 0 and result.pvalue[2] < 0.05  # wider: the interval is above 0
    if statistic == "q3+iqr":  # a location too: the shifted row is 0.3 worse in every replicate
        assert result.low[3] == pytest.approx(0.3) and result.high[3] == pytest.approx(0.3)
    else:  # shifted, the same spread in every replicate
        assert abs(result.low[3]) < 1e-12 and abs(result.high[3]) < 1e-12


def test_bootstrap_resamples_instances_jointly():
    # Row 1 = row 0 + 0.3 at every instance: with the same indices for both rows, every replicate
    # of the mean difference is 0.3, a zero-width interval. Resampling the rows independently
    # would give an interval about 2 * 1.96 * sqrt(2 / 20) = 1.2 wide.
    z = np.random.default_rng(4).standard_normal(20)
    losses = np.stack([z, z + 0.3])
    result = paired_bootstrap(losses, None, "mean", reference=0)
    assert result.high[1] - result.low[1] < 1e-12
    assert result.low[1] == pytest.approx(0.3, abs=1e-12) and result.pvalue[1] == 0.0
    rng = np.random.default_rng(0)
    unpaired = [
        z[rng.integers(0, 20, 20)].mean() - z[rng.integers(0, 20, 20)].mean() for _ in range(500)
    ]
    assert np.ptp(np.quantile(unpaired, [0.025, 0.975])) > 0.5


def test_bootstrap_matches_a_replicate_loop():
    losses, mask = spread_table(), np.ones((4, 20), dtype=bool)
    losses[2, 5] = np.nan  # a failure: worse than every real loss
    mask[3, 18:] = False  # only the 18 instances every row has trained are resampled
    alpha, n_resamples = 0.1, 300
    got = paired_bootstrap(
        losses, mask, "pd", reference=1, n_resamples=n_resamples, alpha=alpha, seed=3
    )
    filled = filled_like_library(losses, mask)[:, :18]
    indices = np.random.default_rng(3).integers(0, 18, size=(n_resamples, 18))
    pd = lambda x: np.percentile(x, 90) - np.percentile(x, 10)
    diff = np.array([[pd(row[idx]) - pd(filled[1][idx]) for idx in indices] for row in filled])
    below, above = (diff <= 0).mean(axis=1), (diff >= 0).mean(axis=1)
    np.testing.assert_allclose(got.pvalue, np.minimum(1, 2 * np.minimum(below, above)))
    np.testing.assert_allclose(
        got.low, [np.sort(d)[int(np.ceil(alpha / 2 * n_resamples)) - 1] for d in diff]
    )
    np.testing.assert_allclose(
        got.high, [np.sort(d)[int(np.ceil((1 - alpha / 2) * n_resamples)) - 1] for d in diff]
    )
    assert got.n_instances == 18 and got.low[2] > 0


def test_bootstrap_interval_and_pvalue_agree():
    rng = np.random.default_rng(6)
    base = rng.standard_normal(12)
    losses = base + rng.normal(0, 1, (30, 1)) * 0.2 + 0.3 * rng.standard_normal((30, 12))
    for alpha in (0.02, 0.05, 0.1, 0.3):
        result = paired_bootstrap(losses, None, "mean", reference=0, n_resamples=400, alpha=alpha)
        above = result.low > 0
        assert above.any() and not above.all()
        np.testing.assert_array_equal(above, (result.pvalue < alpha) & (result.high > 0))


def test_bootstrap_edge_cases_and_validation():
    losses = spread_table()
    mask = np.ones_like(losses, dtype=bool)
    mask[1, 1:] = False  # one common instance: no interval
    result = paired_bootstrap(losses, mask, "std", reference=0)
    assert result.pvalue.tolist() == [1.0] * 4 and result.low[2] == -np.inf
    assert (result.low[0], result.high[0]) == (0.0, 0.0)
    with pytest.raises(ValueError, match="n_resamples"):
        paired_bootstrap(losses, None, "std", 0, n_resamples=0)
    with pytest.raises(ValueError, match="alpha"):
        paired_bootstrap(losses, None, "std", 0, alpha=1.0)
    with pytest.raises(ValueError, match="unknown statistic"):
        paired_bootstrap(losses, None, "spread", 0)
