"""``RaceSettings``: every setting of a race, its defaults, its validation and its TOML form.

One frozen dataclass is the single place where a race setting is named, defaulted and checked:
``jrobust.race(space, pop, settings=...)`` and ``race(space, pop, warmup=5, ...)`` take it, the
``[race]`` table of space files and run folders (``config.toml``) is its TOML form, and the
``jrobust run`` options override it field by field.

Settings come in two kinds. The *race* fields decide what is computed (which instances are
trained and which models leave): a checkpoint resumes only when they are equal. The *execution*
fields (``EXECUTION_FIELDS``) decide only how it is computed (stack sizes, the convolution form,
the compilation cache) and may change between a run and its resumption.

Example:
  >>> s = RaceSettings(rule="welch", alpha=0.1)
  >>> s.warmup, s.resolved(evaluator=True).warmup
  (None, 3)
  >>> RaceSettings.from_table(s.to_table()) == s
  True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from jrobust._src.rules import (
    RULES,
    TEST_RULES,
    Quantile,
    Rule,
    SignificanceRule,
    Threshold,
    get_rule,
)
from jrobust._src.specs import (
    EXECUTION_FIELDS,
    OVER,
    Execution,
    check_fidelity,
    did_you_mean,
    positive_int,
    split_rule,
)
from jrobust._src.stats import Statistic, get_statistic

__all__ = [
    "RaceSettings",
    "Execution",
    "EXECUTION_FIELDS",
    "DEFAULT_WARMUP",
    "OVER",
    "SEED_MAX",
    "check_seed",
]

#: Warm-up instances per model when ``warmup`` is not given (at least the rule's minimum).
DEFAULT_WARMUP = 3


StatisticLike = str | Statistic | Callable[[np.ndarray], float]
RuleLike = str | Rule | Callable[..., np.ndarray]


# Race fields added after checkpoints existed: at their defaults they stay out of a race's
# identity, so a checkpoint of an earlier race still resumes.
_LATER_FIELDS = {"elites": 0, "final_instances": 0, "fidelity": None, "over": "instances"}

#: The largest seed: seeds enter the compiled trainer as 32-bit signed integers.
SEED_MAX = 2**31 - 1


def check_seed(seed: Any, name: str = "seed") -> int:
    """``seed`` as an ``int`` if it is an integer in ``[0, SEED_MAX]``, else a ``ValueError``
    that says the range (checked where the settings are, before anything compiles).

    Example:
      >>> check_seed(2**31)
      Traceback (most recent call last):
      ...
      ValueError: seed must be an integer in [0, 2147483647], got 2147483648
    """
    if (
        isinstance(seed, bool)
        or not isinstance(seed, int | np.integer)
        or not 0 <= seed <= SEED_MAX
    ):
        raise ValueError(f"{name} must be an integer in [0, {SEED_MAX}], got {seed!r}")
    return int(seed)


def parse_rule(spec: RuleLike, **options: Any) -> Rule:
    """A ``Rule`` from a name, ``"name:value"`` (``quantile:0.25`` keeps a quarter,
    ``threshold:0.03`` keeps statistics <= 0.03), a ``Rule`` or a callable.

    ``options`` (``alpha``, ``patience``, ``correction``) apply to the test rules only.

    Example:
      >>> parse_rule("quantile:0.25")
      Quantile(keep=0.25)
    """
    options = {k: v for k, v in options.items() if v is not None}
    if not isinstance(spec, str):
        if options:
            if isinstance(spec, Rule):
                raise ValueError(
                    f"{sorted(options)} cannot be applied to an already built rule {spec!r}; "
                    "pass them to its constructor or give the rule by name"
                )
            raise ValueError(f"{sorted(options)} cannot be applied to a rule given as a function")
        return get_rule(spec)
    name, kwargs = split_rule(spec)
    if options and name not in TEST_RULES:
        verb = "apply" if len(options) > 1 else "applies"
        raise ValueError(
            f"{' and '.join(sorted(options))} {verb} to the test rules "
            f"({', '.join(TEST_RULES)}), not to rule {name!r}"
        )
    return get_rule(name, **kwargs, **options)


_TEST_OPTIONS = ("alpha", "patience", "correction")


def _rule_table(rule: Rule) -> dict[str, Any]:
    """The ``[race]`` entries of a built rule: its name (with the value of quantile/threshold)
    and, for a test rule, its options; a rule those cannot rebuild has no TOML form."""
    if isinstance(rule, Quantile):
        return {"rule": f"quantile:{rule.keep:g}"}
    if isinstance(rule, Threshold):
        return {"rule": f"threshold:{rule.value:g}"}
    if isinstance(rule, SignificanceRule) and rule.name in TEST_RULES:
        options = {k: getattr(rule, k) for k in _TEST_OPTIONS if getattr(rule, k) is not None}
        if get_rule(rule.name, **options) == rule:
            return {"rule": rule.name, **options}
    elif type(rule).__module__ == "jrobust._src.rules" and rule.name in RULES:
        if get_rule(rule.name) == rule:
            return {"rule": rule.name}
    raise TypeError(
        f"the rule {rule!r} has no TOML form; give rule by name (e.g. 'halving', 'welch') to save "
        "the settings in a space file or run folder"
    )


_EXECUTION = Execution()


@dataclasses.dataclass(frozen=True)
class RaceSettings:
    """Every setting of a race. Defaults are documented here and nowhere else.

    Race fields (a resumed race must have the same):
      statistic: eliminates: ``"mean"``, ``"median"``, ``"std"``, ``"min"``, ``"max"``,
        ``"q1"``, ``"q3"``, ``"q3+iqr"``, ``"iqr"``, ``"pd"``, ``"q<p>"``, a ``Statistic`` or
        ``f(losses_1d) -> float``. Default ``"max"``, the worst instance: a model is as good as
        its worst instance, so one statistic punishes a poor level, a wide spread, a heavy tail,
        an outlier instance and a failure (+inf) alike, and a constant but poor model (perfectly
        robust by ``"std"``) loses. Chosen by measurement (``benchmarks/RESULTS.md``, "The
        default statistic"): on six planted cases it has the best worst case of ten candidates
        with the JAX race's rounds (the right model in 67-100 % of the races; ``"mean"`` 50 %
        on equal means with different spreads, ``"std"``/``"pd"`` 0 % on a constant poor model,
        ``"q3+iqr"`` 35 % on an outlier instance), and on the selection benchmark its winner
        was the exhaustive search's best by the same statistic in 100 % (digits) and 80 %
        (calorimeter) of the races, with the best ranks by the exhaustive mean and std together.
        Its weak side, one unlucky instance, is what ``elites`` guards against.
      rank_by: ranks (the best model, the winners); ``None`` (default): ``statistic``.
      rule: ``"halving"`` (default), ``"quantile[:KEEP]"``, ``"threshold:VALUE"``, a test
        (``"welch"``, ``"mannwhitney"``, ``"ks"``, ``"bartlett"``, ``"levene"``,
        ``"fligner"``), a ``Rule`` or ``f(losses, mask, alive, round) -> alive``.
      warmup: instances per model before anything is eliminated; ``None``: 3, or the rule's
        minimum when that is larger.
      alpha, patience: significance level (default 0.05) and patience stop (off) of a test rule.
      correction: a test rule's multiple-comparison correction over the comparisons of a round
        with the best model: ``None`` (default: each at ``alpha``), ``"holm"``, ``"bonferroni"``.
      seed: the root seed of data subsets, initialisations and shuffling. Default 0.
      max_instances: the most instances one model gets. Default 50 (the paper's).
      instances_per_round: new instances per survivor per round after the warm-up: a positive
        integer, or ``"auto"`` (as many as keep the stacks as wide as the warm-up round);
        ``None``: ``"auto"`` with the JAX trainer, 1 (the paper's) with an evaluator.
      budget: the most trainings in all (``None``: no limit); it must at least cover the
        warm-up round.
      n_winners: stop when this many models are left. Default 1.
      elites: elitist racing (as irace's): the ``elites`` best alive models by ``rank_by`` *at
        the start of a round* (on the ledger before that round's instances) cannot be eliminated
        in that round, so a single unlucky round cannot remove them; at most ``survivors - 1``
        are protected, so the race still gets down to ``n_winners``. Default 0 (off).
      final_instances: with ``n_winners > 1``, the finalists (the best ``n_winners`` survivors
        when the race ends by ``winners``, ``patience`` or ``max_instances``) each train this
        many *fresh* instances (indices beyond every instance trained so far) at the last stage's
        training size, and are ordered by ``rank_by`` over those fresh instances alone (the
        post-selection "final race"; ``winners`` best first). Default 0: no final race, so
        ``n_winners`` keeps meaning "stop when this many are left" and the extra
        ``n_winners * final_instances`` trainings are asked for; 10 is a good value (a
        Wilcoxon test needs 6 pairs, the mean's standard error falls to a third of one
        instance's spread).
      fidelity: ``None`` (default: one stage at every model's own ``train_size``) or increasing
        training-sample sizes, e.g. ``(500, 2000, 8000, 32000)``: the race runs one stage per
        size, every model at the first size, the survivors of stage ``s`` on size ``s + 1`` with
        fresh instances (a new warm-up); a stage's rules and statistics see only its own
        instances, and ``max_instances`` bounds each stage. Stage ``s < S - 1`` of ``S`` ends
        after the first round that leaves at most ``ceil(M (W / M) ** ((s + 1) / S))`` survivors
        (``M`` models, ``W = n_winners``: the same fraction ``(W / M) ** (1 / S)`` kept per stage),
        or when its survivors reach ``max_instances`` or its patience stop; a stage left with at
        most ``n_winners`` survivors skips to the last stage (or to the final race).
      over: what the statistics and the rules see, per model: ``"instances"`` (default: one
        loss per instance, on the untransformed test set), ``"transforms"`` (one loss per
        transformation parameter of the population's ``TransformGrid``, the mean over the
        stage's instances: ``statistic="max"`` is then the worst angle, ``"std"`` the spread
        across angles) or ``"both"`` (one loss per (instance, parameter) pair). Paired rules
        pair the same parameter (and instance) across models. ``"transforms"`` and ``"both"``
        need a population made with ``jrobust.data.with_transforms`` (or an evaluator that
        returns transformed losses); the warm-up and ``max_instances`` still count instances.

    Execution fields (may change on resume):
      max_bucket: at most this many instances per compiled call (``None``: sized from memory).
      min_bucket: the smallest stack compiled (``None``: 8 where a stack is one ``vmap``, 1 on
        the CPU, where a stack is a loop over groups of two lanes and its size hardly changes
        the speed per lane).
      conv_impl: ``"im2col"``, ``"xla"`` or ``None``/``"auto"`` (the backend's faster form).
      compilation_cache: JAX's persistent compilation cache: ``True`` (default, in
        ``jrobust._src.cache.cache_dir("jax")``), a folder, or ``False``.
      merge: which models share one compiled program (``jrobust._src.programs``): ``"auto"``
        (default: merge while the padded work stays within ``waste``), ``"none"`` (one program
        per cohort), ``"max"`` (everything mergeable).
      waste: the bound of ``merge="auto"`` on the padded work, as a fraction over the lanes' own
        (``None``: ``jrobust._src.programs.DEFAULT_WASTE``).
      stack_mode: how a stack runs: ``"auto"``/``None`` (``lax.map`` over groups of two lanes
        on the CPU, one ``vmap`` elsewhere), ``"vmap"``, ``"map"`` or ``"map:N"``.
    """

    statistic: StatisticLike = "max"
    rank_by: StatisticLike | None = None
    rule: RuleLike = "halving"
    warmup: int | None = None
    alpha: float | None = None
    patience: int | None = None
    correction: str | None = None
    seed: int = 0
    max_instances: int = 50
    instances_per_round: int | str | None = None
    budget: int | None = None
    n_winners: int = 1
    elites: int = 0
    final_instances: int = 0
    fidelity: tuple[int, ...] | None = None
    over: str = "instances"
    # the execution fields, with the defaults of ``Execution`` (their one source)
    max_bucket: int | None = _EXECUTION.max_bucket
    min_bucket: int | None = _EXECUTION.min_bucket
    conv_impl: str | None = _EXECUTION.conv_impl
    compilation_cache: bool | str = _EXECUTION.compilation_cache
    merge: str = _EXECUTION.merge
    waste: float | None = _EXECUTION.waste
    stack_mode: str | None = _EXECUTION.stack_mode

    def __post_init__(self) -> None:
        get_statistic(self.statistic)
        if self.rank_by is not None:
            get_statistic(self.rank_by)
        if self.alpha is not None and not (
            isinstance(self.alpha, int | float)
            and not isinstance(self.alpha, bool)
            and 0 < self.alpha < 1
        ):
            raise ValueError(f"alpha must be a number in (0, 1), got {self.alpha!r}")
        positive_int("patience", self.patience, optional=True)
        rule = self.make_rule()
        positive_int("warmup", self.warmup, optional=True)
        if self.warmup is not None and self.warmup < rule.min_warmup:
            raise ValueError(
                f"warmup={self.warmup} is too small for rule {rule.name!r}: it needs at least "
                f"{rule.min_warmup} instances per model; use warmup >= {rule.min_warmup}"
            )
        check_seed(self.seed)
        positive_int("max_instances", self.max_instances)
        if self.max_instances < self.warmup_for(rule):
            raise ValueError(
                f"max_instances={self.max_instances} is smaller than warmup="
                f"{self.warmup_for(rule)}; raise max_instances or lower warmup"
            )
        ipr = self.instances_per_round
        if ipr is not None and ipr != "auto":
            try:
                positive_int("instances_per_round", ipr)
            except ValueError:
                raise ValueError(
                    f"instances_per_round must be a positive integer or 'auto', got {ipr!r}"
                ) from None
        positive_int("budget", self.budget, optional=True)
        positive_int("n_winners", self.n_winners)
        positive_int("elites", self.elites, minimum=0)
        positive_int("final_instances", self.final_instances, minimum=0)
        object.__setattr__(self, "fidelity", check_fidelity(self.fidelity))
        if self.over not in OVER:
            raise ValueError(
                f"over must be one of {', '.join(map(repr, OVER))} (what the statistics are taken "
                f"over), got {self.over!r}"
            )
        self.execution  # noqa: B018 - validates the execution fields

    # ------------------------------------------------------------------ derived
    @property
    def execution(self) -> Execution:
        """The fields that say how the race is computed (``Execution``)."""
        return Execution(**{f: getattr(self, f) for f in EXECUTION_FIELDS})

    @classmethod
    def race_part(cls, table: Mapping[str, Any]) -> dict[str, Any]:
        """The race's own entries of a ``[race]`` table (its execution fields dropped)."""
        return {k: v for k, v in table.items() if k not in EXECUTION_FIELDS}

    def make_rule(self) -> Rule:
        """The elimination rule, with ``alpha``/``patience``/``correction`` applied."""
        return parse_rule(
            self.rule, alpha=self.alpha, patience=self.patience, correction=self.correction
        )

    def warmup_for(self, rule: Rule | None = None) -> int:
        """The warm-up: ``warmup``, or the default (3, or the rule's minimum if larger)."""
        if self.warmup is not None:
            return int(self.warmup)
        return max(DEFAULT_WARMUP, (rule or self.make_rule()).min_warmup)

    def resolved(self, *, evaluator: bool = False) -> RaceSettings:
        """The settings with every ``None`` that has a default filled in (warm-up,
        instances per round: ``"auto"`` with the JAX trainer, 1 with an ``evaluator``)."""
        ipr = self.instances_per_round
        if ipr is None:
            ipr = 1 if evaluator else "auto"
        return dataclasses.replace(self, warmup=self.warmup_for(), instances_per_round=ipr)

    def replace(self, **changes: Any) -> RaceSettings:
        """A copy with some fields changed (validated again)."""
        _check_names(changes)
        return dataclasses.replace(self, **changes)

    @classmethod
    def of(
        cls, settings: RaceSettings | Mapping[str, Any] | None, **overrides: Any
    ) -> RaceSettings:
        """``settings`` (a ``RaceSettings``, a mapping of its fields, or ``None`` for the
        defaults) with ``overrides`` applied."""
        if settings is None:
            base = cls()
        elif isinstance(settings, RaceSettings):
            base = settings
        elif isinstance(settings, Mapping):
            _check_names(settings)
            base = cls(**settings)
        else:
            raise TypeError(
                f"settings must be a RaceSettings or a mapping of its fields, got "
                f"{type(settings).__name__}"
            )
        return base.replace(**overrides) if overrides else base

    def describe(self) -> dict[str, Any]:
        """The settings as plain values (statistics and rules by name): a result's ``settings``."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("statistic", "rank_by") and value is not None:
                value = get_statistic(value).name
            elif f.name == "rule":
                value = self.make_rule().name
            elif f.name == "fidelity" and value is not None:
                value = list(value)
            out[f.name] = value
        if out["rank_by"] is None:
            out["rank_by"] = out["statistic"]
        return out

    def identity(self) -> dict[str, Any]:
        """What a checkpoint must agree on: every race field, rules in full (``repr``)."""
        described = self.describe()
        out = {k: v for k, v in described.items() if k not in EXECUTION_FIELDS}
        out["rule"] = repr(self.make_rule())
        for key, default in _LATER_FIELDS.items():  # checkpoints written before they existed
            if out.get(key) == default:
                del out[key]
        return out

    # ------------------------------------------------------------------ TOML
    def to_table(self, *, execution: bool = True) -> dict[str, Any]:
        """The ``[race]`` table: every field that is not ``None`` (TOML has no null).

        Raises:
          TypeError: when a statistic or rule is a Python object without a name to write.
        """
        table: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if not execution and f.name in EXECUTION_FIELDS:
                continue
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name in ("statistic", "rank_by") and not isinstance(value, str):
                raise TypeError(
                    f"{f.name} {value!r} has no TOML form; give it by name (e.g. 'std') to save "
                    "the settings in a space file or run folder"
                )
            if f.name == "rule" and not isinstance(value, str):
                table.update(_rule_table(get_rule(value)))
                continue
            if f.name == "fidelity":
                value = list(value)
            table[f.name] = value.item() if hasattr(value, "item") else value
        return table

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> RaceSettings:
        """Settings from a ``[race]`` table (``"none"`` stands for ``None``); unknown keys and bad
        values raise ``ValueError`` naming the key."""
        _check_names(table)
        values = {
            k: (None if isinstance(v, str) and v.lower() == "none" else v) for k, v in table.items()
        }
        for key in ("alpha", "waste"):
            if isinstance(values.get(key), int) and not isinstance(values[key], bool):
                values[key] = float(values[key])
        return cls(**values)

    @classmethod
    def field_names(cls, *, execution: bool = True) -> tuple[str, ...]:
        return tuple(
            f.name for f in dataclasses.fields(cls) if execution or f.name not in EXECUTION_FIELDS
        )


def _check_names(names: Mapping[str, Any] | Any) -> None:
    known = RaceSettings.field_names()
    unknown = [k for k in names if k not in known]
    if unknown:
        named = ", ".join(f"{k!r}{did_you_mean(k, known)}" for k in unknown)
        raise TypeError(
            f"unknown race setting{'s' if len(unknown) > 1 else ''} {named}; the race settings "
            f"are {', '.join(known)}"
        )
