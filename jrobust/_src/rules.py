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
Statistic values follow :mod:`jrobust._src.stats`: failed instances are worst (+inf), so a failed
model never survives a cut while a finite one remains.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import ClassVar, NamedTuple

import numpy as np

from jrobust._src.specs import RULES as _RULE_NAMES
from jrobust._src.specs import did_you_mean
from jrobust._src.stats import (
    ALTERNATIVES,
    CORRECTIONS,
    PAIRED_TESTS,
    POSTHOCS,
    SPREAD_TESTS,
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

StatisticLike = str | Statistic | Callable[[np.ndarray], float]


class PValues(NamedTuple):
    """The p-values of one round of a test rule (``SignificanceRule.pvalues``): one per model,
    NaN where a model was not compared (the best one, those not alive)."""

    raw: np.ndarray
    adjusted: np.ndarray
    best: int
    omnibus: float | None = None


def _first_min(values: np.ndarray) -> int:
    """Index of the smallest value, the lowest index among ties (values are never NaN)."""
    return int(np.argmin(values))


@dataclasses.dataclass(frozen=True)
class Rule:
    """Base of the elimination rules; subclasses implement ``_keep``.

    ``select`` validates its inputs, keeps everything during warm-up, and otherwise returns
    ``alive & keep`` where ``keep`` comes from the rule; if that is empty the best alive model by
    ``rank_by`` survives.
    """

    min_warmup: ClassVar[int] = 1

    @property
    def name(self) -> str:
        return type(self).__name__.lower()

    def _keep(
        self,
        losses: np.ndarray,
        mask: np.ndarray,
        alive: np.ndarray,
        round_index: int,
        statistic: Statistic,
        rank_by: Statistic,
    ) -> np.ndarray:
        raise NotImplementedError

    def select(
        self,
        losses: np.ndarray,
        mask: np.ndarray,
        alive: np.ndarray,
        round_index: int,
        warmup: int,
        statistic: StatisticLike = "mean",
        rank_by: StatisticLike | None = None,
    ) -> np.ndarray:
        """The new alive mask after round ``round_index``.

        Args:
          losses: ``(M, N)`` instance test losses (non-finite = failed instance).
          mask: ``(M, N)`` bool, True where an instance has been trained.
          alive: ``(M,)`` bool, the models still racing.
          round_index: the round just finished, counting from 1.
          warmup: ``k``, rounds during which nothing is removed (at least ``min_warmup``).
          statistic: the statistic that eliminates (name, ``Statistic`` or callable).
          rank_by: the statistic that decides the best model (default: ``statistic``).

        Returns:
          ``(M,)`` bool, a non-empty subset of ``alive``.

        Example:
          >>> import numpy as np
          >>> x = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
          >>> Halving().select(x, np.ones_like(x, bool), np.ones(3, bool), 2, 1).tolist()
          [True, True, False]
        """
        losses = np.asarray(losses, dtype=np.float64)
        mask = np.asarray(mask)
        alive = np.asarray(alive)
        if losses.ndim != 2 or mask.shape != losses.shape:
            raise ValueError(
                f"losses {losses.shape} and mask {mask.shape} must be the same (models, "
                "instances) shape"
            )
        if alive.shape != (losses.shape[0],) or alive.dtype != np.bool_:
            raise ValueError(
                f"alive must be a bool array of shape ({losses.shape[0]},), one flag per model; "
                f"got dtype {alive.dtype} and shape {alive.shape}"
            )
        if not alive.any():
            raise ValueError("alive selects no model; start the race with at least one model")
        if int(round_index) < 1:
            raise ValueError(f"round_index counts rounds from 1, got {round_index}")
        if int(warmup) < self.min_warmup:
            raise ValueError(
                f"rule {self.name!r} needs warmup >= {self.min_warmup} instances per model "
                f"before eliminating, got warmup={warmup}; raise warmup"
            )
        if round_index <= warmup:
            return alive.copy()
        statistic = get_statistic(statistic)
        rank_by = statistic if rank_by is None else get_statistic(rank_by)
        keep = np.asarray(self._keep(losses, mask, alive, round_index, statistic, rank_by))
        if keep.shape != alive.shape:
            raise ValueError(
                f"rule {self.name!r} returned shape {keep.shape}, expected {alive.shape}"
            )
        new_alive = alive & keep.astype(bool)
        if not new_alive.any():
            survivors = np.flatnonzero(alive)
            best = survivors[_first_min(rank_by(losses[survivors], mask[survivors]))]
            new_alive[best] = True
        return new_alive

    def should_stop(self, removed_counts: Sequence[int]) -> bool:
        """Whether the race should stop early given how many models each elimination removed."""
        del removed_counts
        return False


@dataclasses.dataclass(frozen=True)
class Halving(Rule):
    """Keep the better half of the alive models by ``statistic``: ``ceil(n / 2)`` of ``n``.

    An odd count keeps its median model (3 -> 2, 5 -> 3); ties go to the lower row index. With
    one instance per round and racing until one model is left, the race trains
    ``halving_trainings(M, k)`` instances, ``(k + 2) M - 2`` when ``M`` is a power of two.

    Example:
      >>> import numpy as np
      >>> x = np.array([[3.0], [1.0], [2.0]])
      >>> Halving().select(x, np.ones_like(x, bool), np.ones(3, bool), 2, 1).tolist()
      [False, True, True]
    """

    def _keep(self, losses, mask, alive, round_index, statistic, rank_by):
        survivors = np.flatnonzero(alive)
        order = np.argsort(statistic(losses[survivors], mask[survivors]), kind="stable")
        keep = np.zeros(alive.shape, dtype=bool)
        keep[survivors[order[: -(-len(survivors) // 2)]]] = True
        return keep


def halving_trainings(n_models: int, warmup: int) -> int:
    """Trainings a halving race makes to get from ``n_models`` models down to one.

    Every model trains ``warmup`` instances, then every round trains one instance of each of the
    ``n_j > 1`` survivors and keeps ``ceil(n_j / 2)``: ``k M + sum_j n_j`` with ``n_0 = M``. For a
    power of two this is ``(k + 2) M - 2``; one model trains just its ``k`` warm-up instances.

    Args:
      n_models: ``M >= 1``.
      warmup: ``k >= 0``.

    Returns:
      The number of trained instances.

    Example:
      >>> halving_trainings(4, 4)
      22
    """
    if n_models < 1 or warmup < 0:
        raise ValueError(f"need n_models >= 1 and warmup >= 0, got {n_models} and {warmup}")
    total, n = warmup * n_models, n_models
    while n > 1:
        total, n = total + n, -(-n // 2)
    return total


@dataclasses.dataclass(frozen=True)
class Quantile(Rule):
    """Keep models whose ``statistic`` is at most the ``keep``-quantile over the alive models.

    The quantile is NumPy's linear one; at least the best model is kept. ``keep=0.5`` keeps the
    better half (ties kept together), ``keep=1`` removes only failed (+inf) models.

    Example:
      >>> import numpy as np
      >>> x = np.array([[4.0], [1.0], [2.0], [3.0]])
      >>> Quantile(0.5).select(x, np.ones_like(x, bool), np.ones(4, bool), 2, 1).tolist()
      [False, True, True, False]
    """

    keep: float = 0.5

    def __post_init__(self):
        if not 0.0 < self.keep <= 1.0:
            raise ValueError(
                f"Quantile keep must be a fraction in (0, 1], got {self.keep}; e.g. 0.5 keeps "
                "the better half"
            )

    def _keep(self, losses, mask, alive, round_index, statistic, rank_by):
        values = statistic(losses, mask)
        cut = quantile(self.keep)(values[alive][None, :])[0]
        return (values <= cut) & np.isfinite(values)


@dataclasses.dataclass(frozen=True)
class Threshold(Rule):
    """Keep models whose ``statistic`` is at most ``value`` (else the best by ``rank_by``).

    Example:
      >>> import numpy as np
      >>> x = np.array([[0.5], [1.5]])
      >>> Threshold(1.0).select(x, np.ones_like(x, bool), np.ones(2, bool), 2, 1).tolist()
      [True, False]
    """

    value: float

    def __post_init__(self):
        if not np.isfinite(self.value):
            raise ValueError(f"Threshold value must be a finite number, got {self.value}")

    def _keep(self, losses, mask, alive, round_index, statistic, rank_by):
        return statistic(losses, mask) <= self.value


@dataclasses.dataclass(frozen=True)
class SignificanceRule(Rule):
    """Base of the test rules: drop models significantly worse than the current best.

    The best alive model is the argmin of ``rank_by``. A subclass gives a p-value for every other
    alive model against the best; the ``m = alive - 1`` p-values of one round are adjusted by
    ``correction`` (:func:`jrobust.stats.adjust_pvalues`), and a model is removed when its
    adjusted p-value is below ``alpha`` *and* its ``statistic`` is greater than the best's (a
    model significantly *better* in spread is never removed for being different). Subclasses
    have the fields ``alpha``, ``patience`` and ``correction``; ``should_stop`` implements the
    patience stop.
    """

    min_warmup: ClassVar[int] = 2

    def __post_init__(self):
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}; e.g. 0.05")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be None or >= 1, got {self.patience}")
        if self.correction not in CORRECTIONS:
            raise ValueError(
                f"unknown correction {self.correction!r}; use None (no correction), 'holm' or "
                "'bonferroni'"
            )

    def _test(
        self, losses: np.ndarray, mask: np.ndarray, best: int, statistic: Statistic
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """P-values of the alive rows against row ``best``, and optionally which rows are worse
        (``None``: those whose ``statistic`` is greater than the best's); an omnibus test may add
        its p-value as a third item."""
        raise NotImplementedError

    def _decide(self, losses, mask, alive, statistic, rank_by) -> tuple[np.ndarray, PValues]:
        survivors = np.flatnonzero(alive)
        losses, mask = losses[survivors], mask[survivors]
        best = _first_min(rank_by(losses, mask))
        pvalues, worse, *omnibus = self._test(losses, mask, best, statistic)
        if worse is None:
            values = statistic(losses, mask)
            worse = values > values[best]
        others = np.arange(len(survivors)) != best
        adjusted = np.ones(len(survivors))
        adjusted[others] = adjust_pvalues(pvalues[others], self.correction)
        keep = np.zeros(alive.shape, dtype=bool)
        keep[survivors] = ~((adjusted < self.alpha) & worse)
        raw_all = np.full(alive.shape, np.nan)
        adjusted_all = np.full(alive.shape, np.nan)
        raw_all[survivors[others]] = np.asarray(pvalues, np.float64)[others]
        adjusted_all[survivors[others]] = adjusted[others]
        omnibus_p = float(omnibus[0]) if omnibus else None
        return keep, PValues(raw_all, adjusted_all, int(survivors[best]), omnibus_p)

    def _keep(self, losses, mask, alive, round_index, statistic, rank_by):
        return self._decide(losses, mask, alive, statistic, rank_by)[0]

    def pvalues(
        self,
        losses: np.ndarray,
        mask: np.ndarray,
        alive: np.ndarray,
        statistic: StatisticLike = "mean",
        rank_by: StatisticLike | None = None,
    ) -> PValues:
        """The p-values this rule decides on for the ``alive`` models (after warm-up), as
        ``select`` computes them: each alive model against the best (``best``, argmin of
        ``rank_by``), ``raw`` and ``adjusted`` by ``correction`` (the one compared with
        ``alpha``); NaN for the best model and for the models not alive. ``omnibus`` is the
        Friedman test's p-value (``None`` for the other rules). ``select``'s signature is
        unchanged; the race records these in its path table.

        Example:
          >>> import numpy as np
          >>> x = np.array([[1.0, 1.1, 0.9, 1.0], [2.0, 2.1, 1.9, 2.0]])
          >>> p = TwoSampleTest("welch").pvalues(x, np.ones_like(x, bool), np.ones(2, bool))
          >>> p.best, bool(np.isnan(p.adjusted[0])), bool(p.adjusted[1] < 0.05)
          (0, True, True)
        """
        statistic = get_statistic(statistic)
        rank_by = statistic if rank_by is None else get_statistic(rank_by)
        losses = np.asarray(losses, dtype=np.float64)
        return self._decide(losses, np.asarray(mask), np.asarray(alive), statistic, rank_by)[1]

    def should_stop(self, removed_counts: Sequence[int]) -> bool:
        """True after ``patience`` consecutive elimination rounds that removed nothing.

        Example:
          >>> TwoSampleTest(patience=2).should_stop([3, 0, 0])
          True
        """
        if self.patience is None or len(removed_counts) < self.patience:
            return False
        return not any(removed_counts[-self.patience :])


@dataclasses.dataclass(frozen=True)
class TwoSampleTest(SignificanceRule):
    """Drop models that a two-sample test finds different from, and worse than, the best.

    The best alive model is the argmin of ``rank_by``; every other alive model is removed when
    its test p-value against the best (after ``correction``) is below ``alpha`` *and* its
    ``statistic`` is greater than the best's (a model significantly *better* in spread is never
    removed for being different). P-values follow :func:`jrobust.stats.two_sample_pvalues` (model
    first, best second).

    Args:
      test: one of ``jrobust.stats.TESTS``.
      alpha: significance level in (0, 1).
      alternative: ``"two-sided"``, ``"less"`` or ``"greater"`` (location tests only).
      patience: stop the race after this many consecutive eliminations removing nothing
        (``None``: never).
      correction: ``None`` (each comparison at ``alpha``), ``"holm"`` or ``"bonferroni"`` over
        the ``alive - 1`` comparisons of a round (:func:`jrobust.stats.adjust_pvalues`).

    Example:
      >>> import numpy as np
      >>> x = np.array([[1.0, 1.1, 0.9, 1.0], [2.0, 2.1, 1.9, 2.0]])
      >>> TwoSampleTest("welch").select(x, np.ones_like(x, bool), np.ones(2, bool), 3, 2).tolist()
      [True, False]
    """

    test: str = "welch"
    alpha: float = 0.05
    alternative: str = "two-sided"
    patience: int | None = None
    correction: str | None = None

    def __post_init__(self):
        if self.test not in TESTS:
            raise ValueError(f"unknown test {self.test!r}; use one of {', '.join(TESTS)}")
        super().__post_init__()
        if self.alternative not in ALTERNATIVES:
            raise ValueError(f"unknown alternative {self.alternative!r}; use one of {ALTERNATIVES}")
        if self.test in SPREAD_TESTS and self.alternative != "two-sided":
            raise ValueError(
                f"the spread test {self.test!r} is two-sided only; use alternative='two-sided'"
            )

    @property
    def name(self) -> str:
        return self.test

    def _test(self, losses, mask, best, statistic):
        return two_sample_pvalues(self.test, losses, mask, best, self.alternative), None


_PAIRED_MIN_WARMUP = {"wilcoxon": 5, "ttest_paired": 2}


@dataclasses.dataclass(frozen=True)
class PairedTest(SignificanceRule):
    """Drop models that a paired test finds different from, and worse than, the best.

    Instance ``i`` of every model shares its data subset and shuffling stream, so each alive
    model is compared with the best (argmin of ``rank_by``) on the instances both have trained,
    pair by pair: the test sees the differences ``loss_model - loss_best``, and variation common
    to all models (an easy or a hard data subset) cancels. A model is removed when its p-value
    (after ``correction``) is below ``alpha`` *and* its ``statistic`` is greater than the best's.
    P-values follow :func:`jrobust.stats.paired_pvalues` (failed instances worst, fewer than 2
    pairs or all-zero differences: p = 1).

    ``min_warmup``: ``"ttest_paired"`` needs 2 pairs. ``"wilcoxon"`` needs 5 warm-up instances,
    so that its first test has 6 pairs: without ties the smallest two-sided p-value of ``n`` pairs
    is ``2^(1 - n)``, and ``n = 6`` is the first below the default ``alpha = 0.05`` (0.031).
    Smaller ``alpha`` or a correction need more: ``2^(1 - n) < alpha / m`` for Bonferroni over
    ``m`` comparisons (``alpha = 0.01``: 8 pairs; ``m = 100`` at 0.05: 12).

    Args:
      test: one of ``jrobust.stats.PAIRED_TESTS``: ``"wilcoxon"`` or ``"ttest_paired"``.
      alpha: significance level in (0, 1).
      alternative: ``"two-sided"``, ``"less"`` or ``"greater"`` (``"greater"``: the model's losses
        tend to be larger than the best's).
      patience: stop the race after this many consecutive eliminations removing nothing
        (``None``: never).
      correction: ``None``, ``"holm"`` or ``"bonferroni"`` over the ``alive - 1`` comparisons.

    Example:
      >>> import numpy as np
      >>> base = np.array([1.0, 5.0, 2.0, 8.0, 3.0, 6.0])  # instance difficulty, shared
      >>> x = np.stack([base, base + 0.1, base + np.array([0.2, -0.1, 0.1, -0.2, 0.1, -0.1])])
      >>> PairedTest("wilcoxon").select(x, np.ones_like(x, bool), np.ones(3, bool), 6, 5).tolist()
      [True, False, True]
    """

    test: str = "wilcoxon"
    alpha: float = 0.05
    alternative: str = "two-sided"
    patience: int | None = None
    correction: str | None = None

    def __post_init__(self):
        if self.test not in PAIRED_TESTS:
            raise ValueError(
                f"unknown paired test {self.test!r}; use one of {', '.join(PAIRED_TESTS)}"
            )
        super().__post_init__()
        if self.alternative not in ALTERNATIVES:
            raise ValueError(f"unknown alternative {self.alternative!r}; use one of {ALTERNATIVES}")

    @property
    def name(self) -> str:
        return self.test

    @property
    def min_warmup(self) -> int:
        return _PAIRED_MIN_WARMUP[self.test]

    def _test(self, losses, mask, best, statistic):
        return paired_pvalues(self.test, losses, mask, best, self.alternative), None


@dataclasses.dataclass(frozen=True)
class Friedman(SignificanceRule):
    """The Friedman rank test over the alive models, then each against the best post hoc.

    The blocks are the instances trained by every alive model; within each block the alive
    models' losses are ranked (failed instances worst). If the omnibus Friedman test rejects
    (p < ``alpha``), every model is compared with the best (argmin of ``rank_by``) by the
    ``posthoc`` test on the rank sums and removed when that p-value (after ``correction``) is
    below ``alpha`` and its ``statistic`` is greater than the best's; otherwise nobody leaves.
    Formulas, from Conover (1999) as in irace, are those of :func:`jrobust.stats.friedman`: with
    ``n`` blocks, ``k`` models, rank sums ``R_j``, ``A1 = sum r^2``, ``C1 = n k (k + 1)^2 / 4``:

    * omnibus ``T1 = (k - 1) (sum R_j^2 - n C1) / (A1 - C1)`` against chi-squared(k - 1);
    * ``"conover"``: ``|R_j - R_best| / sqrt(2 (n A1 - sum R_i^2) / ((n - 1)(k - 1)))`` against
      Student's t with ``(n - 1)(k - 1)`` degrees of freedom, two-sided;
    * ``"nemenyi"``: ``|R_j - R_best| / sqrt(n k (k + 1) / 12)`` against the studentized range
      of ``k`` means with infinite degrees of freedom (it already controls the error over all
      pairs, so it is conservative for ``k - 1`` comparisons with the best).

    ``min_warmup = 3``: ``T1`` is at most ``n (k - 1)``, so the omnibus test at ``alpha = 0.05``
    can reject from 3 blocks when ``k >= 3`` (p = 0.0498) and from 4 when two models are left
    (``chi2.sf(4, 1) = 0.046``).

    Args:
      alpha: significance level in (0, 1), for the omnibus and the post-hoc tests.
      posthoc: ``"conover"`` or ``"nemenyi"``.
      patience: stop the race after this many consecutive eliminations removing nothing
        (``None``: never).
      correction: ``None``, ``"holm"`` or ``"bonferroni"`` over the ``alive - 1`` post-hoc
        comparisons.

    Example:
      >>> import numpy as np
      >>> base = np.array([1.0, 5.0, 2.0, 8.0])  # instance difficulty, shared
      >>> x = np.stack([base, base + np.array([0.1, -0.1, 0.2, -0.2]), base + 1.0])
      >>> Friedman().select(x, np.ones_like(x, bool), np.ones(3, bool), 4, 3).tolist()
      [True, True, False]
    """

    alpha: float = 0.05
    posthoc: str = "conover"
    patience: int | None = None
    correction: str | None = None
    min_warmup: ClassVar[int] = 3

    def __post_init__(self):
        super().__post_init__()
        if self.posthoc not in POSTHOCS:
            raise ValueError(f"unknown posthoc {self.posthoc!r}; use one of {', '.join(POSTHOCS)}")

    def _test(self, losses, mask, best, statistic):
        result = friedman(losses, mask, best, self.posthoc)
        if not result.pvalue < self.alpha:
            return np.ones(len(losses)), None, result.pvalue
        return result.posthoc, None, result.pvalue


@dataclasses.dataclass(frozen=True)
class Bootstrap(SignificanceRule):
    """Drop models whose ``statistic`` a paired bootstrap finds significantly above the best's.

    For any statistic (meant for the spread ones, std, PD, Q3+IQR, that have no classical paired
    test): the instances trained by every alive model are resampled jointly (one set of indices
    per replicate for every model), and the percentile interval of ``statistic(model) -
    statistic(best)`` at level ``1 - alpha`` comes from ``n_resamples`` replicates
    (:func:`jrobust.stats.paired_bootstrap`, a ``numpy.random.default_rng(seed)`` generator, so a
    race is reproducible). A model is removed when the whole interval lies above 0 and its
    ``statistic`` is greater than the best's (the best is the argmin of ``rank_by``).

    Corrections act on the bootstrap p-values ``p = min(1, 2 min(#{d <= 0}, #{d >= 0}) / B)``,
    which reject exactly when the interval excludes 0: ``"bonferroni"`` is the interval at level
    ``1 - alpha / m`` (``m = alive - 1``); ``"holm"`` applies Holm's step-down to these p-values
    and removes a model when its adjusted p-value is below ``alpha`` and its interval lies above
    0 (not below it).

    ``min_warmup = 4``: the first interval then has 5 instances. Percentile intervals of so few
    instances are too narrow (anti-conservative), spread statistics most of all; a warm-up of 10
    or more is advisable.

    Args:
      alpha: the interval level is ``1 - alpha``, ``alpha`` in (0, 1).
      n_resamples: bootstrap replicates ``B`` (the p-value resolution is ``2 / B``).
      seed: seed of the resampling generator.
      patience: stop the race after this many consecutive eliminations removing nothing
        (``None``: never).
      correction: ``None``, ``"holm"`` or ``"bonferroni"`` over the ``alive - 1`` comparisons.

    Example:
      >>> import numpy as np
      >>> z = np.array([0.3, -1.2, 0.8, 1.5, -0.4, 0.1, -0.9, 0.6])
      >>> x = np.stack([1 + 0.1 * z, 1 + z, 1.2 + 0.1 * z[::-1]])
      >>> Bootstrap().select(x, np.ones_like(x, bool), np.ones(3, bool), 9, 8, "std").tolist()
      [True, False, True]
    """

    alpha: float = 0.05
    n_resamples: int = 1000
    seed: int = 0
    patience: int | None = None
    correction: str | None = None
    min_warmup: ClassVar[int] = 4

    def __post_init__(self):
        super().__post_init__()
        if (
            isinstance(self.n_resamples, bool)
            or not isinstance(self.n_resamples, int | np.integer)
            or self.n_resamples < 1
        ):
            raise ValueError(
                f"n_resamples must be a positive integer, got {self.n_resamples!r}; e.g. 1000"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")

    def _test(self, losses, mask, best, statistic):
        result = paired_bootstrap(
            losses, mask, statistic, best, self.n_resamples, self.alpha, self.seed
        )
        values = statistic(losses, mask)
        return result.pvalue, (result.low > 0) & (values > values[best])


@dataclasses.dataclass(frozen=True)
class FunctionRule(Rule):
    """A user rule ``fn(losses, mask, alive, round_index) -> alive`` (bool ``(M,)``).

    It is called only after warm-up; its answer is intersected with ``alive``, and if empty the
    best alive model by ``rank_by`` survives.

    Example:
      >>> import numpy as np
      >>> def drop_last(losses, mask, alive, round_index):
      ...     return np.arange(len(alive)) < alive.sum() - 1
      >>> rule = get_rule(drop_last)
      >>> rule.select(np.zeros((3, 2)), np.ones((3, 2), bool), np.ones(3, bool), 2, 1).tolist()
      [True, True, False]
    """

    fn: Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]

    @property
    def name(self) -> str:
        return getattr(self.fn, "__name__", "custom")

    def _keep(self, losses, mask, alive, round_index, statistic, rank_by):
        return self.fn(losses, mask, alive.copy(), round_index)


_CONSTRUCTORS: dict[str, Callable[..., Rule]] = {
    "halving": Halving,
    "quantile": Quantile,
    "threshold": Threshold,
    **{test: functools.partial(TwoSampleTest, test) for test in TESTS},
    "friedman": Friedman,
    **{test: functools.partial(PairedTest, test) for test in PAIRED_TESTS},
    "bootstrap": Bootstrap,
}
RULES = tuple(_CONSTRUCTORS)
assert RULES == _RULE_NAMES, "jrobust._src.specs.RULES names the rules of _CONSTRUCTORS"
PAIRED_RULES = ("friedman", *PAIRED_TESTS)
# Every rule name that takes alpha, patience and correction (a SignificanceRule).
TEST_RULES = (*TESTS, *PAIRED_RULES, "bootstrap")


def get_rule(rule: str | Rule | Callable[..., np.ndarray], **kwargs) -> Rule:
    """Resolve an elimination rule from a name, a ``Rule`` or a callable.

    Args:
      rule: one of ``RULES`` (a two-sample test name gives ``TwoSampleTest(test=name,
        **kwargs)``, ``"wilcoxon"``/``"ttest_paired"`` a ``PairedTest``, ``"friedman"`` a
        ``Friedman`` and ``"bootstrap"`` a ``Bootstrap`` rule), a ``Rule`` (returned as is), or
        ``fn(losses, mask, alive, round_index) -> alive``.
      **kwargs: the rule's options, e.g. ``alpha=0.1``, ``correction="holm"``, ``keep=0.25``,
        ``value=1.0``; every name in ``TEST_RULES`` takes ``alpha``, ``patience`` and
        ``correction``.

    Returns:
      A ``Rule``.

    Example:
      >>> get_rule("levene", alpha=0.1)
      TwoSampleTest(test='levene', alpha=0.1, alternative='two-sided', patience=None, correction=None)
      >>> get_rule("wilcoxon", alpha=0.1, correction="holm")
      PairedTest(test='wilcoxon', alpha=0.1, alternative='two-sided', patience=None, correction='holm')
    """
    if isinstance(rule, Rule):
        if kwargs:
            raise ValueError(
                f"options {sorted(kwargs)} cannot be applied to an already built rule {rule!r}; "
                "pass them to its constructor or give the rule by name"
            )
        return rule
    if isinstance(rule, str):
        if rule not in _CONSTRUCTORS:
            raise ValueError(
                f"unknown rule {rule!r}{did_you_mean(rule, RULES)}; use one of {', '.join(RULES)}, "
                "a Rule, or a callable "
                "fn(losses, mask, alive, round_index) -> alive"
            )
        try:
            return _CONSTRUCTORS[rule](**kwargs)
        except TypeError as error:
            constructor = _CONSTRUCTORS[rule]
            cls = getattr(constructor, "func", constructor)  # a partial names its class
            fields = [f.name for f in dataclasses.fields(cls) if f.name != "test"]
            raise TypeError(
                f"bad options for rule {rule!r} ({error}); it accepts {fields}"
            ) from None
    if callable(rule):
        if kwargs:
            raise ValueError(f"options {sorted(kwargs)} cannot be applied to a callable rule")
        return FunctionRule(rule)
    raise TypeError(f"rule must be a name, a Rule or a callable, got {type(rule).__name__}")
