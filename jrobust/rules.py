"""Elimination rules: after each round of the race, decide which surviving models leave.

This module is the public face: it re-exports names defined under ``jrobust._src``.
"""

from jrobust._src.rules import (
    PAIRED_RULES,
    RULES,
    TEST_RULES,
    Bootstrap,
    Friedman,
    FunctionRule,
    Halving,
    PairedTest,
    PValues,
    Quantile,
    Rule,
    SignificanceRule,
    Threshold,
    TwoSampleTest,
    get_rule,
    halving_trainings,
)

__all__ = [
    "RULES",
    "PAIRED_RULES",
    "TEST_RULES",
    "Rule",
    "PValues",
    "Halving",
    "Quantile",
    "Threshold",
    "SignificanceRule",
    "TwoSampleTest",
    "PairedTest",
    "Friedman",
    "Bootstrap",
    "FunctionRule",
    "get_rule",
    "halving_trainings",
]
