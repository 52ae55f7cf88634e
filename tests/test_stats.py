"""Statistics and two-sample tests of jrobust.stats against NumPy/SciPy, row by row."""

import warnings

import numpy as np
import pytest
import scipy.stats

from jrobust.stats import (
    LOCATION_TESTS,
    SPREAD_TESTS,
    STATISTICS,
    TESTS,
    Statistic,
    get_statistic,
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
