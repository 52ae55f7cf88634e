"""Elimination rules: after each round of the race, decide which surviving models leave.

This is the "remove every model whose robustness is worse" step of Algorithm 1 of Boldyrev,
Ratnikov, Shevelev ("Approach to Finding a Robust Deep Learning Model", IEEE Access 2025), with
the variants of the authors' follow-up talk: halving, a quantile or fixed-threshold cut on a
statistic, and a two-sample test against the current best model. Because instance ``i`` of every
model trains on the same data subset and shuffling stream, the losses of two models at one
instance form a pair, and paired rules (Wilcoxon signed-rank, paired t, Friedman with a post-hoc
comparison, a paired bootstrap of the statistic) remove worse models from fewer instances when
the instances themselves vary a lot. Every test rule takes ``alpha``, ``patience`` and a
multiple-comparison ``correction`` over the comparisons of one round.

Every rule is a frozen dataclass with ``name``, ``min_warmup`` and
``select(losses, mask, alive, round_index, warmup, statistic, rank_by) -> alive``. Rounds count
from 1 and nothing is removed while ``round_index <= warmup`` (Algorithm 1: "if s > k").
``statistic`` eliminates; ``rank_by`` decides the best model (they may differ: rank by mean,
eliminate by spread). At least one model always survives; ties go to the lower row index.
Statistic values follow :mod:`jrobust.stats`: failed instances are worst (+inf), so a failed
model never survives a cut while a finite one remains.
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
