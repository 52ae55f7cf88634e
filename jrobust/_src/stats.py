"""Statistics and two-sample tests over a masked table of instance test losses.

The selection meta-algorithm of Boldyrev, Ratnikov, Shevelev ("Approach to Finding a Robust Deep
Learning Model", IEEE Access 2025) scores every model by a statistic of its instance-loss sample
(mean, median, Q3, Q3+IQR, max, min, std, PD = Q90 - Q10), or compares each model's sample with
the best model's by a two-sample test (Welch, Mann-Whitney, KS for location; Bartlett, Levene,
Fligner-Killeen for spread).

Instance ``i`` of every model trains on the same data subset and shuffling stream (common random
numbers), so the losses of two models at instance ``i`` form a *pair*. The paired tests use that:
the Wilcoxon signed-rank and paired t-tests (:func:`paired_pvalues`), the Friedman test with the
Conover or Nemenyi post-hoc comparison (:func:`friedman`), and a paired bootstrap of any statistic
(:func:`paired_bootstrap`). :func:`adjust_pvalues` corrects a family of p-values (Holm,
Bonferroni) for multiple comparisons.

Every function takes ``losses: (M, N) float`` (model x instance) and ``mask: (M, N) bool`` (True
where that instance has been trained). Conventions:

* Within the mask, a non-finite loss (NaN, +inf, -inf) is a *failed* instance and counts as the
  worst value, +inf, for every statistic. Failures are replaced by +inf *before* computing, so
  ``max``/``mean``/``std`` of a row with a failure is +inf while ``median`` stays finite when
  fewer than half of the instances failed, and ``min`` is the best successful instance.
* Any NaN result becomes +inf, and a row with no trained instance gives +inf: a failing model
  never ranks first by a statistic that sees its failure.
* Percentiles use NumPy's default ``method="linear"`` (type 7 of Hyndman & Fan), computed here on
  sorted rows so that +inf values interpolate to +inf instead of NaN.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy  # its submodules load on first use: importing jrobust._src.stats stays cheap

from jrobust._src.specs import STATISTICS as _NAMES
from jrobust._src.specs import statistic_name

__all__ = [
    "STATISTICS",
    "TESTS",
    "LOCATION_TESTS",
    "SPREAD_TESTS",
    "ALTERNATIVES",
    "PAIRED_TESTS",
    "POSTHOCS",
    "CORRECTIONS",
    "Statistic",
    "get_statistic",
    "quantile",
    "two_sample_pvalues",
    "paired_pvalues",
    "FriedmanResult",
    "friedman",
    "BootstrapResult",
    "paired_bootstrap",
    "adjust_pvalues",
]

LOCATION_TESTS = ("welch", "mannwhitney", "ks")
SPREAD_TESTS = ("bartlett", "levene", "fligner")
TESTS = LOCATION_TESTS + SPREAD_TESTS
ALTERNATIVES = ("two-sided", "less", "greater")
PAIRED_TESTS = ("wilcoxon", "ttest_paired")
POSTHOCS = ("conover", "nemenyi")
CORRECTIONS = (None, "holm", "bonferroni")


def _check_table(losses: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim != 2:
        raise ValueError(
            f"losses must be a 2-D (models, instances) array, got shape {losses.shape}; "
            "reshape a single model's sample with losses[None, :]"
        )
    if mask is None:
        return losses, np.ones(losses.shape, dtype=bool)
    mask = np.asarray(mask)
    if mask.shape != losses.shape:
        raise ValueError(
            f"mask shape {mask.shape} differs from losses shape {losses.shape}; "
            "give one bool per (model, instance) cell"
        )
    if mask.dtype != np.bool_:
        raise ValueError(
            f"mask must be a bool array, got dtype {mask.dtype}; pass mask.astype(bool)"
        )
    return losses, mask


def _worst_values(losses: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Trained cells with failures as +inf; untrained cells as NaN."""
    values = np.where(np.isfinite(losses), losses, np.inf)
    return np.where(mask, values, np.nan)


@dataclasses.dataclass(frozen=True)
class Statistic:
    """A named statistic of each model's instance-loss sample.

    Args:
      name: the name it is registered or reported under.
      fn: ``fn(values, mask) -> (M,)`` where ``values`` is the ``(M, N)`` float64 table with
        failed instances as +inf and untrained cells as NaN, and ``mask`` marks trained cells.

    Calling it returns a ``(M,)`` float64 array; NaN results and rows without a trained instance
    are +inf.

    Example:
      >>> import numpy as np
      >>> get_statistic("mean")(np.array([[1.0, 3.0], [2.0, np.nan]]))
      array([ 2., inf])
    """

    name: str
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray]

    def __call__(self, losses: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        losses, mask = _check_table(losses, mask)
        with np.errstate(all="ignore"):
            out = np.asarray(self.fn(_worst_values(losses, mask), mask), dtype=np.float64)
        if out.shape != (losses.shape[0],):
            raise ValueError(
                f"statistic {self.name!r} returned shape {out.shape}, expected "
                f"({losses.shape[0]},): one value per model"
            )
        out = np.where(np.isnan(out), np.inf, out)
        return np.where(mask.any(axis=1), out, np.inf)


def _quantiles(values: np.ndarray, mask: np.ndarray, probs: tuple[float, ...]) -> np.ndarray:
    """Linear-method quantiles of each row, ``(len(probs), M)``; +inf propagates without NaN."""
    ordered = np.sort(values, axis=1)  # failures (+inf) sort before untrained cells (NaN)
    last = np.maximum(mask.sum(axis=1) - 1, 0)[:, None]
    out = []
    for p in probs:
        virtual = last * p
        lo = np.floor(virtual).astype(np.intp)
        hi = np.minimum(lo + 1, last)
        t = virtual - lo
        a = np.take_along_axis(ordered, lo, axis=1)
        b = np.take_along_axis(ordered, hi, axis=1)
        # The same two-sided lerp as NumPy, so finite results agree to the last bit.
        lerp = np.where(t >= 0.5, b - (b - a) * (1 - t), a + (b - a) * t)
        out.append(np.where(t == 0, a, lerp)[:, 0])
    return np.stack(out)


def _mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask, values, 0.0).sum(axis=1) / mask.sum(axis=1)


def _std(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    count = mask.sum(axis=1)
    deviation = np.where(mask, values - _mean(values, mask)[:, None], 0.0)
    var = (deviation**2).sum(axis=1) / np.maximum(count - 1, 1)
    failed = (np.isinf(values) & mask).any(axis=1)
    # One sample has no spread to measure: 0.0 (not +inf, which would end every model at warm-up).
    return np.where(failed, np.inf, np.sqrt(var))


def _quantile_fn(*probs: float, combine: Callable[..., np.ndarray] | None = None):
    def fn(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        q = _quantiles(values, mask, probs)
        return q[0] if combine is None else combine(*q)

    return fn


_REGISTRY: dict[str, Statistic] = {
    s.name: s
    for s in (
        Statistic("mean", _mean),
        Statistic("median", _quantile_fn(0.5)),
        Statistic("std", _std),
        Statistic("min", lambda v, m: np.where(m, v, np.inf).min(axis=1)),
        Statistic("max", lambda v, m: np.where(m, v, -np.inf).max(axis=1)),
        Statistic("q1", _quantile_fn(0.25)),
        Statistic("q3", _quantile_fn(0.75)),
        Statistic("q3+iqr", _quantile_fn(0.25, 0.75, combine=lambda q1, q3: q3 + (q3 - q1))),
        Statistic("iqr", _quantile_fn(0.25, 0.75, combine=lambda q1, q3: q3 - q1)),
        Statistic("pd", _quantile_fn(0.1, 0.9, combine=lambda q10, q90: q90 - q10)),
    )
}
STATISTICS = tuple(_REGISTRY)
assert STATISTICS == _NAMES, "jrobust._src.specs.STATISTICS names the statistics of _REGISTRY"
_PERCENTILE_NAME = re.compile(r"q(\d+(?:\.\d*)?)")


def quantile(p: float) -> Statistic:
    """The ``p``-quantile statistic (linear method), named ``"q<100 p>"``.

    Args:
      p: the probability, in [0, 1].

    Returns:
      A ``Statistic``; ``quantile(0.9)`` equals ``get_statistic("q90")``.

    Example:
      >>> import numpy as np
      >>> quantile(0.5)(np.array([[1.0, 2.0, 3.0, np.nan, np.nan]]))  # 2 of 5 failed
      array([3.])
    """
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"quantile probability must be in [0, 1], got {p}; e.g. 0.9 for Q90")
    return Statistic(f"q{100 * p:g}", _quantile_fn(p))


def _from_callable(fn: Callable[[np.ndarray], float]) -> Statistic:
    def rowwise(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.array(
            [float(fn(row[m])) if m.any() else np.inf for row, m in zip(values, mask, strict=True)]
        )

    return Statistic(getattr(fn, "__name__", "custom"), rowwise)


def get_statistic(statistic: str | Statistic | Callable[[np.ndarray], float]) -> Statistic:
    """Resolve a statistic from a name, a ``Statistic`` or a callable.

    Args:
      statistic: one of ``STATISTICS`` (``"q1"``/``"q3"`` are quartiles); ``"q<p>"`` for the
        ``p``-th percentile with ``0 <= p <= 100`` (``"q90"``, ``"q2.5"``; ``"q03"`` is the 3rd
        percentile); a ``Statistic``; or a callable ``f(sample_1d) -> float`` applied to each
        model's trained instances (failures given as +inf).

    Returns:
      A ``Statistic``.

    Example:
      >>> get_statistic("q90").name
      'q90'
    """
    if isinstance(statistic, Statistic):
        return statistic
    if isinstance(statistic, str):
        if statistic in _REGISTRY:
            return _REGISTRY[statistic]
        statistic_name(statistic)  # the one grammar of statistic names, with a "did you mean"
        match = _PERCENTILE_NAME.fullmatch(statistic)
        return Statistic(statistic, _quantile_fn(float(match.group(1)) / 100))
    if callable(statistic):
        return _from_callable(statistic)
    raise TypeError(
        f"statistic must be a name, a Statistic or a callable, got {type(statistic).__name__}"
    )


_SCIPY_TESTS: dict[str, Callable[..., object]] = {
    "welch": lambda x, y, alt: scipy.stats.ttest_ind(
        x, y, equal_var=False, alternative=alt, axis=1
    ),
    "mannwhitney": lambda x, y, alt: scipy.stats.mannwhitneyu(x, y, alternative=alt, axis=1),
    "ks": lambda x, y, alt: scipy.stats.ks_2samp(x, y, alternative=alt, axis=1),
    "bartlett": lambda x, y, alt: scipy.stats.bartlett(x, y, axis=1),
    "levene": lambda x, y, alt: scipy.stats.levene(x, y, axis=1),
    "fligner": lambda x, y, alt: scipy.stats.fligner(x, y, axis=1),
}


def _scipy_pvalues(test: str, samples: np.ndarray, reference: np.ndarray, alt: str) -> np.ndarray:
    """SciPy's p-values of each row of ``samples`` (R, n) against ``reference`` (n_ref,)."""
    references = np.broadcast_to(reference, (len(samples), len(reference)))
    if test == "mannwhitney":
        # SciPy's method="auto" looks for ties across the whole batch; testing rows with and
        # without ties separately keeps every p-value equal to a one-pair call.
        pooled = np.sort(np.concatenate([samples, references], axis=1), axis=1)
        ties = (np.diff(pooled, axis=1) == 0).any(axis=1)
        groups = [g for g in (ties, ~ties) if g.any()]
    else:
        groups = [np.ones(len(samples), dtype=bool)]
    p = np.empty(len(samples))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for g in groups:
            result = _SCIPY_TESTS[test](samples[g], references[g], alt)
            p[g] = np.asarray(result.pvalue, dtype=np.float64).reshape(-1)
    return p


def _group_pvalues(test: str, samples: np.ndarray, reference: np.ndarray, alt: str) -> np.ndarray:
    """P-values of the rows of ``samples`` (R, n) against one ``reference`` sample."""
    p = _scipy_pvalues(test, samples, reference, alt)
    both_constant = (np.ptp(samples, axis=1) == 0) & (np.ptp(reference) == 0)
    if test in SPREAD_TESTS:
        degenerate = np.ones(len(samples))  # two zero spreads are equal
    else:
        diff = samples[:, 0] - reference[0]
        differs = {"two-sided": diff != 0, "greater": diff > 0, "less": diff < 0}[alt]
        degenerate = np.where(differs, 0.0, 1.0)
    p = np.where(both_constant, degenerate, p)
    return np.clip(np.where(np.isnan(p), 1.0, p), 0.0, 1.0)


def _fill_failures(losses: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Losses with every non-finite value replaced by ``hi + 10 (hi - lo + 1)`` for the tests.

    ``hi``/``lo`` are the largest/smallest finite trained losses of the table (1.0 if none): a
    failed instance becomes a finite value clearly worse than every real loss.
    """
    trained_finite = losses[mask & np.isfinite(losses)]
    hi, lo = (trained_finite.max(), trained_finite.min()) if trained_finite.size else (1.0, 1.0)
    return np.where(np.isfinite(losses), losses, hi + 10.0 * (hi - lo + 1.0))


def _check_reference(reference: int, n_models: int) -> int:
    if not -n_models <= reference < n_models:
        raise ValueError(f"reference={reference} is not a row of a table with {n_models} models")
    return reference % n_models


def two_sample_pvalues(
    test: str,
    losses: np.ndarray,
    mask: np.ndarray | None,
    reference: int,
    alternative: str = "two-sided",
) -> np.ndarray:
    """P-values of a two-sample test of every model's instance losses against one model's.

    Row ``i`` is SciPy's test of ``(sample_i, sample_reference)``, so ``alternative="greater"``
    means "model ``i``'s losses tend to be larger than the reference's". Tests: ``"welch"``
    (``ttest_ind(equal_var=False)``), ``"mannwhitney"`` (``mannwhitneyu``), ``"ks"``
    (``ks_2samp``), and the two-sided spread tests ``"bartlett"``, ``"levene"``, ``"fligner"``
    (SciPy defaults, e.g. Levene centred on the median). Rows with equal sample counts are tested
    in one vectorised SciPy call.

    Conventions:
      * A failed (non-finite) instance is replaced, for the test only, by the finite value
        ``hi + 10 * (hi - lo + 1)`` where ``hi``/``lo`` are the largest/smallest finite trained
        losses of the whole table (1.0 if none), so a diverging model is clearly different.
      * The reference row, rows with fewer than 2 samples, and every row when the reference has
        fewer than 2 samples get p = 1 (cannot reject).
      * Both samples constant: location tests give p = 1 if the two values are equal and 0 if
        they differ (one-sided: 0 only when the difference lies in the ``alternative``
        direction); spread tests give 1 (both spreads are zero). Any other NaN p-value is 1.
        No SciPy warning escapes.

    Args:
      test: one of ``TESTS``.
      losses: ``(M, N)`` instance losses.
      mask: ``(M, N)`` bool, True where trained (None: all trained).
      reference: row index of the reference model (usually the current best).
      alternative: ``"two-sided"``, ``"less"`` or ``"greater"`` (location tests only).

    Returns:
      ``(M,)`` float64 p-values in [0, 1].

    Example:
      >>> import numpy as np
      >>> x = np.array([[1.0, 1.1, 0.9, 1.0], [2.0, 2.1, 1.9, 2.0]])
      >>> bool(two_sample_pvalues("welch", x, None, reference=0)[1] < 0.05)
      True
    """
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; use one of {', '.join(TESTS)}")
    if alternative not in ALTERNATIVES:
        raise ValueError(f"unknown alternative {alternative!r}; use one of {ALTERNATIVES}")
    if test in SPREAD_TESTS and alternative != "two-sided":
        raise ValueError(
            f"the spread test {test!r} is two-sided only, got alternative={alternative!r}; use "
            f"alternative='two-sided' or a location test ({', '.join(LOCATION_TESTS)})"
        )
    losses, mask = _check_table(losses, mask)
    n_models = losses.shape[0]
    reference = _check_reference(reference, n_models)
    filled = _fill_failures(losses, mask)
    counts = mask.sum(axis=1)
    pvalues = np.ones(n_models)
    ref_sample = filled[reference][mask[reference]]
    if ref_sample.size < 2:
        return pvalues
    testable = counts >= 2
    testable[reference] = False
    for n in np.unique(counts[testable]):
        rows = np.flatnonzero(testable & (counts == n))
        samples = filled[rows][mask[rows]].reshape(len(rows), n)
        pvalues[rows] = _group_pvalues(test, samples, ref_sample, alternative)
    return pvalues


def _t_pvalue(t: np.ndarray, df: np.ndarray, alternative: str) -> np.ndarray:
    if alternative == "greater":
        return scipy.stats.t.sf(t, df)
    if alternative == "less":
        return scipy.stats.t.cdf(t, df)
    return 2.0 * scipy.stats.t.sf(np.abs(t), df)


def _normal_pvalue(z: float, alternative: str) -> float:
    if alternative == "greater":
        return float(scipy.stats.norm.sf(z))
    if alternative == "less":
        return float(scipy.stats.norm.cdf(z))
    return float(2.0 * scipy.stats.norm.sf(abs(z)))


def _ttest_paired(diff: np.ndarray, pairs: np.ndarray, alternative: str) -> np.ndarray:
    """``ttest_rel`` of each row's paired differences, vectorised over ragged pair masks."""
    n = pairs.sum(axis=1)
    mean = np.where(pairs, diff, 0.0).sum(axis=1) / np.maximum(n, 1)
    deviation = np.where(pairs, diff - mean[:, None], 0.0)
    var = (deviation**2).sum(axis=1) / np.maximum(n - 1, 1)
    # Constant differences: a sure shift (t = +-inf) unless they are all zero (p = 1 below).
    t = np.where(var > 0, mean / np.sqrt(var / np.maximum(n, 1)), np.sign(mean) * np.inf)
    p = _t_pvalue(t, np.maximum(n - 1, 1), alternative)
    return np.where((var == 0) & (mean == 0), 1.0, p)


def _signed_rank_pvalue(diff: np.ndarray, alternative: str) -> float:
    """The p-value of ``scipy.stats.wilcoxon(diff)`` with its defaults, without its slow paths.

    SciPy (zero_method="wilcox", method="auto", no continuity correction) drops zero differences
    and ranks the rest by absolute value (average ranks). With ``len(diff) <= 50`` and neither
    zeros nor ties it uses the exact null distribution of ``R+`` (the sum of the positive ranks);
    with zeros or ties and ``len(diff) <= 13`` an exhaustive test over the ``2^len`` sign flips;
    otherwise the normal approximation with the tie-corrected variance. Both exact cases are the
    distribution of ``R+`` over independent fair signs, computed here by convolution on doubled
    (integer) ranks, where SciPy enumerates up to ``2^13`` sign patterns one by one (seconds).
    """
    nonzero = diff[diff != 0]
    n = nonzero.size
    if n == 0:
        return 1.0
    ranks = scipy.stats.rankdata(np.abs(nonzero))
    r_plus = ranks[nonzero > 0].sum()
    tie_counts = np.unique(np.abs(nonzero), return_counts=True)[1]
    ties_or_zeros = tie_counts.max() > 1 or n < diff.size
    if diff.size <= 50 and (not ties_or_zeros or diff.size <= 13):
        doubled = np.rint(2.0 * ranks).astype(np.intp)
        pmf = np.zeros(doubled.sum() + 1)
        pmf[0] = 1.0
        for width in doubled:  # add one rank with probability 1/2
            shifted = np.zeros_like(pmf)
            shifted[width:] = pmf[:-width]
            pmf = 0.5 * (pmf + shifted)
        observed = int(np.rint(2.0 * r_plus))
        below, above = pmf[: observed + 1].sum(), pmf[observed:].sum()
        p = {"greater": above, "less": below}.get(alternative, 2.0 * min(below, above))
        return float(min(p, 1.0))
    mean = n * (n + 1) / 4.0
    var = (n * (n + 1) * (2 * n + 1) - (tie_counts**3 - tie_counts).sum() / 2.0) / 24.0
    return min(_normal_pvalue((r_plus - mean) / np.sqrt(var), alternative), 1.0)


def paired_pvalues(
    test: str,
    losses: np.ndarray,
    mask: np.ndarray | None,
    reference: int,
    alternative: str = "two-sided",
) -> np.ndarray:
    """P-values of a paired test of every model's instance losses against one model's.

    The pairs of row ``i`` are the instances trained by both row ``i`` and the reference
    (``mask[i] & mask[reference]``): instance ``j`` of every model shares its data subset and
    shuffling stream. Row ``i`` is SciPy's test of ``(sample_i, sample_reference)`` on those pairs,
    i.e. of the differences ``d = loss_i - loss_reference``, so ``alternative="greater"`` means
    "model ``i``'s losses tend to be larger than the reference's". Tests:

    * ``"wilcoxon"``: the signed-rank test, equal to ``scipy.stats.wilcoxon`` with its defaults
      (zero differences dropped, exact null distribution for up to 50 pairs without ties, an
      exhaustive sign-flip test for up to 13 pairs with ties or zeros, else the tie-corrected
      normal approximation without continuity correction), computed exactly but much faster.
      Without ties the smallest two-sided p-value of ``n`` pairs is ``2^(1 - n)``: at
      ``alpha = 0.05`` it rejects only from 6 pairs (one-sided: 5; ``alpha = 0.01``: 8).
    * ``"ttest_paired"``: the paired t-test ``t = mean(d) / (sd(d) / sqrt(n))`` with ``n - 1``
      degrees of freedom, equal to ``scipy.stats.ttest_rel``, vectorised.

    Conventions (as :func:`two_sample_pvalues`):
      * A failed (non-finite) instance is replaced, for the test only, by the finite value
        ``hi + 10 * (hi - lo + 1)`` (``hi``/``lo``: the largest/smallest finite trained losses
        of the table), so a diverging model is clearly worse; two failures of one instance pair
        up as a zero difference. (One failure among many pairs is one huge difference: the
        signed-rank test counts it as the largest rank, while it inflates the t-test's standard
        deviation as much as its mean, so the t-test sees a diverging model only when several
        instances fail.)
      * The reference row and rows with fewer than 2 pairs get p = 1 (cannot reject).
      * All differences zero: p = 1. Constant nonzero differences (a sure shift): the t-test
        gives p = 0 in the direction of the ``alternative`` (else 1). No NaN, no SciPy warning.

    Args:
      test: one of ``PAIRED_TESTS``.
      losses: ``(M, N)`` instance losses.
      mask: ``(M, N)`` bool, True where trained (None: all trained).
      reference: row index of the reference model (usually the current best).
      alternative: ``"two-sided"``, ``"less"`` or ``"greater"``.

    Returns:
      ``(M,)`` float64 p-values in [0, 1].

    Example:
      >>> import numpy as np
      >>> base = np.array([1.0, 5.0, 2.0, 8.0, 3.0, 6.0])  # shared by both models
      >>> x = np.stack([base, base + np.array([0.1, 0.2, 0.1, 0.3, 0.2, 0.1])])
      >>> paired_pvalues("wilcoxon", x, None, reference=0).round(4).tolist()
      [1.0, 0.0312]
    """
    if test not in PAIRED_TESTS:
        raise ValueError(f"unknown paired test {test!r}; use one of {', '.join(PAIRED_TESTS)}")
    if alternative not in ALTERNATIVES:
        raise ValueError(f"unknown alternative {alternative!r}; use one of {ALTERNATIVES}")
    losses, mask = _check_table(losses, mask)
    reference = _check_reference(reference, losses.shape[0])
    filled = _fill_failures(losses, mask)
    pairs = mask & mask[reference]
    diff = filled - filled[reference]
    testable = pairs.sum(axis=1) >= 2
    testable[reference] = False
    pvalues = np.ones(losses.shape[0])
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if test == "ttest_paired":
            pvalues[testable] = _ttest_paired(diff[testable], pairs[testable], alternative)
        else:
            for row in np.flatnonzero(testable):
                pvalues[row] = _signed_rank_pvalue(diff[row][pairs[row]], alternative)
    return np.clip(np.where(np.isnan(pvalues), 1.0, pvalues), 0.0, 1.0)


class FriedmanResult(NamedTuple):
    """The Friedman test of a table and its post-hoc comparisons against one reference row.

    Attributes:
      statistic: the tie-corrected Friedman chi-squared statistic ``T1``.
      pvalue: its p-value, ``chi2.sf(T1, k - 1)`` (1 when it cannot be computed).
      posthoc: ``(M,)`` post-hoc p-values of every row against the reference (1 for the
        reference itself), computed whether or not the omnibus test rejects.
      n_blocks: the number of blocks (instances trained by every row).
    """

    statistic: float
    pvalue: float
    posthoc: np.ndarray
    n_blocks: int


def friedman(
    losses: np.ndarray, mask: np.ndarray | None, reference: int, posthoc: str = "conover"
) -> FriedmanResult:
    """The Friedman rank test over all rows, then each row against ``reference`` post hoc.

    The blocks are the ``n`` instances trained by every one of the ``k`` rows (instance ``j``
    shares its data subset and shuffling stream across models). Within each block the ``k``
    losses are ranked 1..k (average ranks for ties); ``R_j`` is the rank sum of row ``j``,
    ``A1 = sum r^2`` over all ranks and ``C1 = n k (k + 1)^2 / 4``. Formulas (Conover, *Practical
    Nonparametric Statistics*, 3rd ed. 1999, pp. 369-371; the comparison irace makes):

    * omnibus: ``T1 = (k - 1) (sum_j R_j^2 - n C1) / (A1 - C1)``, p = ``chi2.sf(T1, k - 1)``;
      this is ``scipy.stats.friedmanchisquare`` with its tie correction, here also for k = 2.
    * ``posthoc="conover"``: ``t_j = |R_j - R_ref| / sqrt(2 (n A1 - sum_i R_i^2) /
      ((n - 1)(k - 1)))``, two-sided p = ``2 t.sf(t_j, (n - 1)(k - 1))``. When every block ranks
      the rows alike the denominator is 0: p = 0 for a different rank sum, 1 for an equal one.
    * ``posthoc="nemenyi"``: ``q_j = |R_j - R_ref| / sqrt(n k (k + 1) / 12)`` (mean ranks over
      ``sqrt(k (k + 1) / (6 n))``, times ``sqrt(2)``), p = ``studentized_range.sf(q_j, k, inf)``;
      no tie correction, and it controls the error over all ``k (k - 1) / 2`` pairs.

    Failed instances are replaced as in :func:`paired_pvalues` (worse than every real loss; two
    failures in one block tie). Fewer than 2 rows or 2 blocks: statistic 0, every p = 1.

    Args:
      losses: ``(M, N)`` instance losses (``k = M`` rows).
      mask: ``(M, N)`` bool, True where trained (None: all trained).
      reference: row index of the reference model (usually the current best).
      posthoc: one of ``POSTHOCS``.

    Returns:
      A ``FriedmanResult``.

    Example:
      >>> import numpy as np
      >>> x = np.array([[1.0, 2.0, 1.5, 3.0], [1.2, 2.1, 1.4, 3.2], [2.0, 3.0, 2.5, 4.0]])
      >>> result = friedman(x, None, reference=0)
      >>> round(result.statistic, 2), round(result.pvalue, 4), result.posthoc.round(4).tolist()
      (6.5, 0.0388, [1.0, 0.207, 0.0026])
    """
    if posthoc not in POSTHOCS:
        raise ValueError(f"unknown post-hoc test {posthoc!r}; use one of {', '.join(POSTHOCS)}")
    losses, mask = _check_table(losses, mask)
    k = losses.shape[0]
    reference = _check_reference(reference, k)
    blocks = mask.all(axis=0)
    n = int(blocks.sum())
    untestable = FriedmanResult(0.0, 1.0, np.ones(k), n)
    if k < 2 or n < 2:
        return untestable
    ranks = scipy.stats.rankdata(_fill_failures(losses, mask)[:, blocks], axis=0)
    rank_sums = ranks.sum(axis=1)
    a1 = (ranks**2).sum()
    c1 = n * k * (k + 1) ** 2 / 4.0
    if a1 - c1 <= 0:  # every block is one tie: nothing to rank
        return untestable
    statistic = (k - 1) * ((rank_sums**2).sum() - n * c1) / (a1 - c1)
    distance = np.abs(rank_sums - rank_sums[reference])
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        pvalue = float(scipy.stats.chi2.sf(statistic, k - 1))
        if posthoc == "conover":
            df = (n - 1) * (k - 1)
            scale = np.sqrt(2.0 * (n * a1 - (rank_sums**2).sum()) / df)
            if scale > 0:
                p = 2.0 * scipy.stats.t.sf(distance / scale, df)
            else:  # identical rankings in every block
                p = np.where(distance > 0, 0.0, 1.0)
        else:
            q = distance / np.sqrt(n * k * (k + 1) / 12.0)
            p = scipy.stats.studentized_range.sf(q, k, np.inf)
    p = np.clip(np.where(np.isnan(p), 1.0, p), 0.0, 1.0)
    p[reference] = 1.0
    return FriedmanResult(float(statistic), pvalue, p, n)


class BootstrapResult(NamedTuple):
    """A paired percentile bootstrap of ``statistic(row) - statistic(reference)``.

    Attributes:
      low, high: ``(M,)`` the percentile interval at level ``1 - alpha``.
      pvalue: ``(M,)`` two-sided bootstrap p-values ``min(1, 2 min(#{d <= 0}, #{d >= 0}) / B)``
        over the ``B`` replicate differences ``d``.
      n_instances: the instances resampled (trained by every row).
    """

    low: np.ndarray
    high: np.ndarray
    pvalue: np.ndarray
    n_instances: int


_BOOTSTRAP_CELLS = 1 << 22  # resampled values held at once (32 MiB of float64)


def paired_bootstrap(
    losses: np.ndarray,
    mask: np.ndarray | None,
    statistic: str | Statistic | Callable[[np.ndarray], float],
    reference: int,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> BootstrapResult:
    """Paired bootstrap of the difference of a statistic between every row and ``reference``.

    The instances trained by every row are resampled with replacement *jointly*: one replicate
    draws ``n`` instance indices and uses them for every model, so a model whose losses follow
    the reference's instance by instance (common random numbers) gets a narrow interval. Each of
    the ``B = n_resamples`` replicates gives ``d = statistic(row*) - statistic(reference*)``; the
    interval is the percentile one, ``[Q(alpha / 2), Q(1 - alpha / 2)]`` of the ``d`` (inverted-CDF
    quantiles), and the p-value ``p = min(1, 2 min(#{d <= 0}, #{d >= 0}) / B)``. They agree
    exactly: ``low > 0`` if and only if ``#{d <= 0} / B < alpha / 2``, i.e. ``p < alpha`` with the
    interval above 0, so testing ``p < alpha / m`` is the interval at level ``1 - alpha / m``.

    The indices come from ``numpy.random.default_rng(seed)`` (no global state): the same inputs
    give the same result. Replicates and models are vectorised (in chunks of rows to bound
    memory); a callable statistic is applied row by row, ``M B`` calls. Failed instances are
    replaced as in :func:`paired_pvalues`, so every replicate statistic is finite for the
    built-in statistics. Fewer than 2 common instances: ``(-inf, inf)``, p = 1 (the reference:
    ``(0, 0)``, p = 1).

    Args:
      losses: ``(M, N)`` instance losses.
      mask: ``(M, N)`` bool, True where trained (None: all trained).
      statistic: the statistic to compare (name, ``Statistic`` or callable).
      reference: row index of the reference model (usually the current best).
      n_resamples: ``B >= 1``, bootstrap replicates.
      alpha: the interval level is ``1 - alpha``, ``alpha`` in (0, 1).
      seed: the seed of the generator.

    Returns:
      A ``BootstrapResult``.

    Example:
      >>> import numpy as np
      >>> z = np.array([0.3, -1.2, 0.8, 1.5, -0.4, 0.1, -0.9, 0.6])
      >>> x = np.stack([1 + 0.1 * z, 1 + z, 1 + 0.1 * z + 0.5])
      >>> result = paired_bootstrap(x, None, "std", reference=0)
      >>> (result.low > 0).tolist(), result.pvalue.tolist()
      ([False, True, False], [1.0, 0.0, 1.0])
    """
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer):
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples}; e.g. 1000")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}; e.g. 0.05 for a 95% interval")
    stat = get_statistic(statistic)
    losses, mask = _check_table(losses, mask)
    n_models = losses.shape[0]
    reference = _check_reference(reference, n_models)
    common = mask.all(axis=0)
    n = int(common.sum())
    if n < 2:
        low, high = np.full(n_models, -np.inf), np.full(n_models, np.inf)
        low[reference] = high[reference] = 0.0
        return BootstrapResult(low, high, np.ones(n_models), n)
    values = _fill_failures(losses, mask)[:, common]
    indices = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    replicates = np.empty((n_models, n_resamples))
    rows = max(1, _BOOTSTRAP_CELLS // (n_resamples * n))
    for start in range(0, n_models, rows):
        resampled = values[start : start + rows][:, indices]  # (rows, B, n): same indices
        replicates[start : start + rows] = stat(resampled.reshape(-1, n)).reshape(-1, n_resamples)
    with np.errstate(invalid="ignore"):
        diff = replicates - replicates[reference]
    diff = np.where(np.isnan(diff), 0.0, diff)  # inf - inf of a user statistic: no evidence
    below, above = (diff <= 0).sum(axis=1), (diff >= 0).sum(axis=1)
    pvalue = np.minimum(1.0, 2.0 * np.minimum(below, above) / n_resamples)
    low, high = np.quantile(diff, [alpha / 2, 1 - alpha / 2], axis=1, method="inverted_cdf")
    return BootstrapResult(low, high, pvalue, n)


def adjust_pvalues(pvalues: np.ndarray, method: str | None) -> np.ndarray:
    """P-values adjusted for multiple comparisons over one family.

    With ``m`` p-values: ``"bonferroni"`` gives ``min(1, m p_i)``; ``"holm"`` (Holm-Bonferroni
    step-down) sorts them, ``p_(1) <= ... <= p_(m)``, and gives ``p~_(j) = max_{i <= j} min(1,
    (m - i + 1) p_(i))``, so rejecting ``p~ < alpha`` is Holm's procedure at family-wise level
    ``alpha``; ``None`` returns them unchanged. Adjusted values keep the order of the inputs, are
    at least the raw ones, monotone in them and at most 1.

    Args:
      pvalues: 1-D p-values in [0, 1] (a family, e.g. every model against the best).
      method: one of ``CORRECTIONS``: None, ``"holm"`` or ``"bonferroni"``.

    Returns:
      ``(m,)`` float64 adjusted p-values.

    Example:
      >>> adjust_pvalues([0.01, 0.04, 0.03, 0.005], "holm").round(6).tolist()
      [0.03, 0.06, 0.06, 0.02]
    """
    if method not in CORRECTIONS:
        raise ValueError(
            f"unknown correction {method!r}; use None (no correction), 'holm' or 'bonferroni'"
        )
    pvalues = np.array(pvalues, dtype=np.float64)
    if pvalues.ndim != 1:
        raise ValueError(f"pvalues must be 1-D (one family), got shape {pvalues.shape}")
    if not ((pvalues >= 0) & (pvalues <= 1)).all():
        raise ValueError(f"p-values must lie in [0, 1] (no NaN), got {pvalues.tolist()}")
    m = pvalues.size
    if method is None or m == 0:
        return pvalues
    if method == "bonferroni":
        return np.minimum(1.0, m * pvalues)
    order = np.argsort(pvalues, kind="stable")
    stepped = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * pvalues[order]))
    adjusted = np.empty(m)
    adjusted[order] = stepped
    return adjusted
