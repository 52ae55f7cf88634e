"""Statistics and two-sample tests over a masked table of instance test losses.

The selection meta-algorithm of Boldyrev, Ratnikov, Shevelev ("Approach to Finding a Robust Deep
Learning Model", IEEE Access 2025) scores every model by a statistic of its instance-loss sample
(mean, median, Q3, Q3+IQR, max, min, std, PD = Q90 - Q10), or compares each model's sample with
the best model's by a two-sample test (Welch, Mann-Whitney, KS for location; Bartlett, Levene,
Fligner-Killeen for spread).

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

import numpy as np
import scipy.stats

__all__ = [
    "STATISTICS",
    "TESTS",
    "LOCATION_TESTS",
    "SPREAD_TESTS",
    "ALTERNATIVES",
    "Statistic",
    "get_statistic",
    "quantile",
    "two_sample_pvalues",
]

LOCATION_TESTS = ("welch", "mannwhitney", "ks")
SPREAD_TESTS = ("bartlett", "levene", "fligner")
TESTS = LOCATION_TESTS + SPREAD_TESTS
ALTERNATIVES = ("two-sided", "less", "greater")


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
        match = _PERCENTILE_NAME.fullmatch(statistic)
        if match and float(match.group(1)) <= 100:
            return Statistic(statistic, _quantile_fn(float(match.group(1)) / 100))
        raise ValueError(
            f"unknown statistic {statistic!r}; use one of {', '.join(STATISTICS)}, "
            "'q<p>' for the p-th percentile (0 <= p <= 100, e.g. 'q90'), or a callable"
        )
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
    if not -n_models <= reference < n_models:
        raise ValueError(f"reference={reference} is not a row of a table with {n_models} models")
    reference %= n_models
    trained_finite = losses[mask & np.isfinite(losses)]
    hi, lo = (trained_finite.max(), trained_finite.min()) if trained_finite.size else (1.0, 1.0)
    filled = np.where(np.isfinite(losses), losses, hi + 10.0 * (hi - lo + 1.0))
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
