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

from jrobust._src.stats import (
    ALTERNATIVES,
    CORRECTIONS,
    LOCATION_TESTS,
    PAIRED_TESTS,
    POSTHOCS,
    SPREAD_TESTS,
    STATISTICS,
    TESTS,
    BootstrapResult,
    FriedmanResult,
    Statistic,
    adjust_pvalues,
    friedman,
    get_statistic,
    paired_bootstrap,
    paired_pvalues,
    quantile,
    two_sample_pvalues,
)

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
