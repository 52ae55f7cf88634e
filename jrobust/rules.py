"""Elimination rules: after each round of the race, decide which surviving models leave.

This is the "remove every model whose robustness is worse" step of Algorithm 1 of Boldyrev,
Ratnikov, Shevelev ("Approach to Finding a Robust Deep Learning Model", IEEE Access 2025), with
the variants of the authors' follow-up talk: halving, a quantile or fixed-threshold cut on a
statistic, and a two-sample test against the current best model.

Every rule is a frozen dataclass with ``name``, ``min_warmup`` and
``select(losses, mask, alive, round_index, warmup, statistic, rank_by) -> alive``. Rounds count
from 1 and nothing is removed while ``round_index <= warmup`` (Algorithm 1: "if s > k").
``statistic`` eliminates; ``rank_by`` decides the best model (they may differ: rank by mean,
eliminate by spread). At least one model always survives; ties go to the lower row index.
Statistic values follow :mod:`jrobust.stats`: failed instances are worst (+inf), so a failed
model never survives a cut while a finite one remains.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np

from jrobust.stats import (
    ALTERNATIVES,
    SPREAD_TESTS,
    TESTS,
    Statistic,
    get_statistic,
    quantile,
    two_sample_pvalues,
)

__all__ = [
    "RULES",
    "Rule",
    "Halving",
    "Quantile",
    "Threshold",
    "TwoSampleTest",
    "FunctionRule",
    "get_rule",
    "halving_trainings",
]

StatisticLike = str | Statistic | Callable[[np.ndarray], float]


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
class TwoSampleTest(Rule):
    """Drop models that a two-sample test finds different from, and worse than, the best.

    The best alive model is the argmin of ``rank_by``; every other alive model is removed when
    its test p-value against the best is below ``alpha`` *and* its ``statistic`` is greater than
    the best's (a model significantly *better* in spread is never removed for being different).
    P-values follow :func:`jrobust.stats.two_sample_pvalues` (model first, best second).

    Args:
      test: one of ``jrobust.stats.TESTS``.
      alpha: significance level in (0, 1).
      alternative: ``"two-sided"``, ``"less"`` or ``"greater"`` (location tests only).
      patience: stop the race after this many consecutive eliminations removing nothing
        (``None``: never).

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
    min_warmup: ClassVar[int] = 2

    def __post_init__(self):
        if self.test not in TESTS:
            raise ValueError(f"unknown test {self.test!r}; use one of {', '.join(TESTS)}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}; e.g. 0.05")
        if self.alternative not in ALTERNATIVES:
            raise ValueError(f"unknown alternative {self.alternative!r}; use one of {ALTERNATIVES}")
        if self.test in SPREAD_TESTS and self.alternative != "two-sided":
            raise ValueError(
                f"the spread test {self.test!r} is two-sided only; use alternative='two-sided'"
            )
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be None or >= 1, got {self.patience}")

    @property
    def name(self) -> str:
        return self.test

    def _keep(self, losses, mask, alive, round_index, statistic, rank_by):
        survivors = np.flatnonzero(alive)
        losses, mask = losses[survivors], mask[survivors]
        best = _first_min(rank_by(losses, mask))
        pvalues = two_sample_pvalues(self.test, losses, mask, best, self.alternative)
        values = statistic(losses, mask)
        keep = np.zeros(alive.shape, dtype=bool)
        keep[survivors] = ~((pvalues < self.alpha) & (values > values[best]))
        return keep

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
}
RULES = tuple(_CONSTRUCTORS)


def get_rule(rule: str | Rule | Callable[..., np.ndarray], **kwargs) -> Rule:
    """Resolve an elimination rule from a name, a ``Rule`` or a callable.

    Args:
      rule: one of ``RULES`` (a test name gives ``TwoSampleTest(test=name, **kwargs)``), a
        ``Rule`` (returned as is), or ``fn(losses, mask, alive, round_index) -> alive``.
      **kwargs: the rule's options, e.g. ``alpha=0.1``, ``keep=0.25``, ``value=1.0``.

    Returns:
      A ``Rule``.

    Example:
      >>> get_rule("levene", alpha=0.1)
      TwoSampleTest(test='levene', alpha=0.1, alternative='two-sided', patience=None)
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
                f"unknown rule {rule!r}; use one of {', '.join(RULES)}, a Rule, or a callable "
                "fn(losses, mask, alive, round_index) -> alive"
            )
        try:
            return _CONSTRUCTORS[rule](**kwargs)
        except TypeError as error:
            cls = TwoSampleTest if rule in TESTS else _CONSTRUCTORS[rule]
            fields = [f.name for f in dataclasses.fields(cls) if f.name != "test"]
            raise TypeError(
                f"bad options for rule {rule!r} ({error}); it accepts {fields}"
            ) from None
    if callable(rule):
        if kwargs:
            raise ValueError(f"options {sorted(kwargs)} cannot be applied to a callable rule")
        return FunctionRule(rule)
    raise TypeError(f"rule must be a name, a Rule or a callable, got {type(rule).__name__}")
