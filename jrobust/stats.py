"""Statistics and two-sample tests over a masked table of instance test losses.

This module is the public face: it re-exports names defined under ``jrobust._src``.
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
