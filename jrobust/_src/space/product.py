"""The product space: the models a race starts with, and their grouping into cohorts.

``SearchSpace(base, **choices)`` is the product of the choices around a base ``ModelConfig``.
A keyword is a ``ModelConfig`` field (``learning_rate``, ``optimizer``, ``batch_size``, ...) or a
field of the base architecture (``conv``, ``dense``, ``activation``, ``hidden``, ...); conditional
parts (``when={"momentum": lambda c: c.optimizer == "sgd"}``) apply a choice only where the
condition holds, and duplicates that result are dropped. Spaces add up with ``+``.

A choice is a list of values (categorical) or a range (``uniform``, ``loguniform``, ``intrange``
of ``jrobust._src.space.distributions``). A space with a range has no finite list of models: it is
searched (``jrobust.search``) or sampled (``space.sample(n, seed=...)``); its ``envelope()`` is
the list of static variants whose programs can train every sample.

Models that differ only in scalar hyperparameters form a *cohort*: one compiled program trains
them all in one stack.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from jrobust._src.config import SCALAR_FIELDS, ModelConfig
from jrobust._src.models.merged import mergeable_architecture
from jrobust._src.programs import plan_programs
from jrobust._src.space.distributions import Categorical, Distribution
from jrobust._src.space.fields import (
    CONFIG_FIELDS,
    SHORT_NAMES,
    architecture_fields,
    format_value,
    get_field,
    set_field,
)

__all__ = ["InfiniteSpaceError", "SearchSpace"]

#: Fields whose integer ranges the merged programs train at their widest (``jrobust._src.programs``):
#: the channels and widths of the zoo's CNN and MLP.
WIDTH_FIELDS = ("conv", "dense", "hidden")

#: The roles of a parameter, see ``SearchSpace.role``.
ROLES = ("scalar", "width", "static")


class InfiniteSpaceError(TypeError, ValueError):
    """A space with ranges asked for its list of models (``len``, ``models``, iteration, names,
    cohorts, programs) or added to another space: it has no finite list; search or sample it."""


# The public face of a space: 31 short methods (listing, cohorts, programs, ranges, sampling,
# long: frames, files); each is small and the logic lives in the modules it calls.
class SearchSpace:
    """The product of choices around a base model; a choice is a list of values or a range.

    Args:
      base: the model every choice modifies (default ``ModelConfig()``).
      when: optional conditions ``{field: predicate(config) -> bool}``; a field's choices apply
        only to models where its predicate holds (elsewhere it keeps the base value).
      **choices: ``field=[values...]`` (a categorical choice) or ``field=range`` (``uniform``,
        ``loguniform``, ``intrange``), for a ``ModelConfig`` field or a field of the base
        architecture. An integer range on a tuple-valued field (``hidden``, ``conv``,
        ``dense``) gives every entry of the model's tuple the drawn value. A continuous range
        needs a scalar hyperparameter (``learning_rate``, ``weight_decay``, ``l2``,
        ``momentum``, ``b1``, ``b2``, ``eps``); other fields shape the compiled program.

    A space of lists only is finite: it has models, ids, names, cohorts and programs. A space
    with a range is not: ``len``, ``models`` and iteration raise ``InfiniteSpaceError``; use
    ``sample``, ``config_of`` and ``envelope`` (or ``jrobust.search``).

    Example:
      >>> from jrobust import zoo
      >>> space = SearchSpace(zoo.paper_config(1), learning_rate=[1e-4, 1e-3], batch_size=[32, 64])
      >>> len(space), space.n_cohorts
      (4, 2)
      >>> from jrobust.space import loguniform, intrange
      >>> ranged = SearchSpace(zoo.mlp_config(), learning_rate=loguniform(1e-5, 1.0),
      ...                      hidden=intrange(16, 128), activation=["relu", "tanh"])
      >>> ranged.is_finite, [m.architecture.hidden for m in ranged.sample(2, seed=0)]
      (False, [(20, 20), (17, 17)])
    """

    def __init__(
        self,
        base: ModelConfig | None = None,
        *,
        when: dict[str, Callable[[ModelConfig], bool]] | None = None,
        **choices: Sequence[Any] | Distribution | Categorical,
    ) -> None:
        base = base if base is not None else ModelConfig()
        if not isinstance(base, ModelConfig):
            raise TypeError(f"base must be a jrobust.ModelConfig, got {type(base).__name__}")
        arch_fields = architecture_fields(base)
        parsed: dict[str, list[Any] | Distribution] = {}
        for field, values in choices.items():
            if field in CONFIG_FIELDS and field in arch_fields:
                raise ValueError(
                    f"choice {field!r} is both a ModelConfig field and an architecture field; "
                    "it is ambiguous: vary the architecture instead (architecture=[...])"
                )
            if field not in CONFIG_FIELDS and field not in arch_fields:
                raise ValueError(
                    f"unknown search-space field {field!r}; use a ModelConfig field "
                    f"({sorted(CONFIG_FIELDS)}) or a field of {type(base.architecture).__name__} "
                    f"({sorted(arch_fields)})"
                )
            if isinstance(values, Distribution):
                _check_range(base, field, values)
                parsed[field] = values
                continue
            if isinstance(values, Categorical):
                values = values.choices
            if isinstance(values, str | bytes) or not isinstance(values, Iterable):
                raise TypeError(
                    f"choices for {field!r} must be a list of values or a range "
                    f"(uniform, loguniform, intrange), got {values!r}"
                )
            parsed[field] = list(values)
            if not parsed[field]:
                raise ValueError(f"choices for {field!r} are empty; give at least one value")
        when = dict(when or {})
        unknown = set(when) - set(choices)
        if unknown:
            raise ValueError(f"conditions given for fields without choices: {sorted(unknown)}")
        self.base = base
        self.choices = parsed
        self.when = when
        self._listed = False
        self._names: list[str] | None = None
        self._model_list: list[ModelConfig] | None = None
        if self.is_finite:
            self._model_list = self._expand()
            if not self._model_list:
                raise ValueError("the search space is empty")
        else:
            self._check_range_ends()

    @classmethod
    def from_models(
        cls, models: Sequence[ModelConfig], names: Sequence[str] | None = None
    ) -> SearchSpace:
        """A space that is an explicit list of models (repeats dropped), optionally named.

        Its one parameter is ``model_id`` (a categorical choice of its models), so ``sample``
        draws its models uniformly.

        Args:
          models: the models, in model-id order.
          names: one readable name per model (default: the fields that differ, see ``names``).
        """
        models = list(models)
        if not models:
            raise ValueError("the search space is empty: give at least one model")
        if not all(isinstance(m, ModelConfig) for m in models):
            raise TypeError("from_models takes jrobust.ModelConfig objects")
        if names is not None and len(names) != len(models):
            raise ValueError(f"got {len(names)} names for {len(models)} models; give one each")
        space = cls.__new__(cls)
        space.base, space.choices, space.when = models[0], {}, {}
        space._listed = True
        given = dict(zip(models, names, strict=True)) if names is not None else {}
        space._model_list = list(dict.fromkeys(models))
        space._names = [given[m] for m in space._model_list] if names is not None else None
        return space

    # ------------------------------------------------------------------ one assignment
    def _assign(self, values: Mapping[str, Any], inactive: set[str] | None = None) -> ModelConfig:
        """The model of one value per choice (in the choices' order), conditions applied; the
        fields whose condition fails (back at their base value) are added to ``inactive``.

        Each value is set in turn, then each condition is checked in turn, every step a valid
        model. When a step is not valid but the conditions would drop the value that makes it so
        (a weight decay only for AdamW, with Adam among the optimizers), the values are set
        unchecked, the conditions see that draft, and the final model alone is checked."""
        dropped: set[str] = set()
        try:
            config = self._set_each(values, dropped, set_field)
        except (ValueError, TypeError):
            if not self.when:
                raise
            dropped.clear()
            config = _checked(self._set_each(values, dropped, _set_unchecked))
        if inactive is not None:
            inactive |= dropped
        return config

    def _set_each(
        self,
        values: Mapping[str, Any],
        dropped: set[str],
        setter: Callable[[ModelConfig, str, Any], ModelConfig],
    ) -> ModelConfig:
        config = self.base
        for field, value in values.items():
            if isinstance(self.choices[field], Distribution):
                current = get_field(config, field)
                if isinstance(current, tuple):  # a width range: every layer of the tuple
                    value = (value,) * len(current)
            config = setter(config, field, value)
        for field, predicate in self.when.items():
            if not predicate(config):
                config = setter(config, field, get_field(self.base, field))
                dropped.add(field)
        return config

    def _expand(self) -> list[ModelConfig]:
        fields = list(self.choices)
        seen: dict[ModelConfig, None] = {}
        for combo in itertools.product(*(self.choices[f] for f in fields)):
            values = dict(zip(fields, combo, strict=True))
            try:
                config = self._assign(values)
            except (ValueError, TypeError) as err:
                raise ValueError(f"the choice {values} gives an invalid model: {err}") from None
            seen.setdefault(config, None)
        return list(seen)

    def _check_range_ends(self) -> None:
        """Every categorical combination with every range at its low end, then its high end,
        must be a valid model: a range that reaches an invalid value (a learning rate of 0, a
        momentum of 1) fails here, before any sample or compilation."""
        listed = [f for f, c in self.choices.items() if not isinstance(c, Distribution)]
        for end in ("low", "high"):
            for combo in itertools.product(*(self.choices[f] for f in listed)):
                chosen = dict(zip(listed, combo, strict=True))
                values = {
                    f: getattr(c, end) if isinstance(c, Distribution) else chosen[f]
                    for f, c in self.choices.items()
                }
                try:
                    self._assign(values)
                except (ValueError, TypeError) as err:
                    raise ValueError(
                        f"the values {values} (every range at its {end} end) give an invalid "
                        f"model: {err}"
                    ) from None

    def config_of(self, values: Mapping[str, Any]) -> ModelConfig:
        """The model of one value per parameter, with the conditions (``when=``) applied exactly
        as in the finite product.

        Args:
          values: ``{parameter: value}`` for every parameter of ``parameters`` (a value of its
            range, or one of its choices; an integer range's value on a tuple field is one
            integer, given to every entry).

        Returns:
          The ``ModelConfig``.

        Raises:
          ValueError: a missing or unknown parameter, a value outside its range or choices, or
            values that make an invalid model.

        Example:
          >>> from jrobust import zoo
          >>> from jrobust.space import uniform
          >>> space = SearchSpace(zoo.mlp_config(), optimizer=["adam", "sgd"],
          ...                     momentum=uniform(0.5, 0.95),
          ...                     when={"momentum": lambda c: c.optimizer == "sgd"})
          >>> space.config_of({"optimizer": "adam", "momentum": 0.6}).momentum  # the base's
          0.9
          >>> space.config_of({"optimizer": "sgd", "momentum": 0.6}).momentum
          0.6
        """
        params = self.parameters
        if not isinstance(values, Mapping):
            raise TypeError(f"values must be a mapping {{parameter: value}}, got {values!r}")
        missing = [f for f in params if f not in values]
        unknown = [f for f in values if f not in params]
        if missing or unknown:
            raise ValueError(
                "config_of needs one value for every parameter "
                f"({', '.join(params) or 'none'})"
                + (f"; missing: {', '.join(missing)}" if missing else "")
                + (f"; unknown: {', '.join(map(str, unknown))}" if unknown else "")
            )
        checked = {f: _checked_value(f, p, values[f]) for f, p in params.items()}
        if self._listed:
            return self._models[checked["model_id"]]
        try:
            return self._assign(checked)
        except (ValueError, TypeError) as err:
            raise ValueError(f"the values {checked} give an invalid model: {err}") from None

    # ------------------------------------------------------------------ parameters and samples
    @property
    def is_finite(self) -> bool:
        """Whether every choice is a list (no range): then the space has a list of models."""
        return not any(isinstance(c, Distribution) for c in self.choices.values())

    @property
    def parameters(self) -> dict[str, Distribution | Categorical]:
        """Each choice as a ``Distribution`` (a range) or a ``Categorical`` (a list), in the order
        given. A space made by ``from_models`` (or ``+``) has one: ``model_id``."""
        if self._listed:
            return {"model_id": Categorical(range(len(self._models)))}
        return {
            f: c if isinstance(c, Distribution) else Categorical(c) for f, c in self.choices.items()
        }

    def role(self, parameter: str) -> str:
        """How a parameter bears on the compiled programs.

        Returns:
          ``"scalar"``: a scalar hyperparameter, an array leaf of every program (no
          recompilation); ``"width"``: an integer range on the widths of the zoo's CNN or MLP
          (``conv``, ``dense``, ``hidden``): the programs train every width as lanes of the
          widest (see ``envelope``); ``"static"``: any other field, one program per value.

        Example:
          >>> from jrobust import zoo
          >>> from jrobust.space import intrange, loguniform
          >>> space = SearchSpace(zoo.mlp_config(), learning_rate=loguniform(1e-4, 1e-1),
          ...                     hidden=intrange(8, 64), batch_size=[32, 64])
          >>> [space.role(p) for p in space.parameters]
          ['scalar', 'width', 'static']
        """
        if parameter not in self.parameters:
            raise ValueError(
                f"unknown parameter {parameter!r}; the space's are {', '.join(self.parameters)}"
            )
        if parameter in SCALAR_FIELDS:
            return "scalar"
        choice = self.choices.get(parameter)
        if (
            isinstance(choice, Distribution)
            and parameter in WIDTH_FIELDS
            and mergeable_architecture(self.base.architecture)
        ):
            return "width"
        return "static"

    def sample_values(
        self, n: int, rng: int | np.random.Generator | None = None
    ) -> list[dict[str, Any]]:
        """``n`` independent uniform draws of every parameter (log ranges uniform in log space).

        Args:
          n: how many assignments.
          rng: a seed (``int``), a ``numpy.random.Generator`` (advanced by the draws) or
            ``None`` (fresh entropy). Parameters are drawn in order, ``n`` values each.

        Returns:
          ``n`` dicts ``{parameter: value}`` of Python numbers or the choices themselves; a
          parameter whose condition fails keeps its drawn value here (``config_of`` drops it).
        """
        count = _check_count(n)
        generator = _generator(rng)
        draws: dict[str, list[Any]] = {}
        for field, param in self.parameters.items():
            drawn = param.sample(generator, count)
            draws[field] = drawn.tolist() if isinstance(param, Distribution) else list(drawn)
        return [{f: draws[f][i] for f in draws} for i in range(count)]

    def sample(self, n: int, seed: int | np.random.Generator | None = None) -> list[ModelConfig]:
        """``n`` models drawn independently and uniformly (``config_of`` of ``sample_values``).

        Draws may repeat a model (certainly so in a finite space); the same seed gives the same
        models.

        Args:
          n: how many models.
          seed: an ``int``, a ``numpy.random.Generator`` or ``None`` (fresh entropy).

        Returns:
          A list of ``n`` ``ModelConfig``.

        Example:
          >>> from jrobust import zoo
          >>> from jrobust.space import loguniform
          >>> space = SearchSpace(zoo.mlp_config(), learning_rate=loguniform(1e-5, 1.0))
          >>> [f"{m.learning_rate:.2e}" for m in space.sample(3, seed=0)]
          ['1.53e-02', '2.23e-04', '1.60e-05']
        """
        return [self.config_of(values) for values in self.sample_values(n, seed)]

    def envelope(self, *, max_combinations: int = 100_000) -> list[ModelConfig]:
        """The static variants whose programs can train every model of the space as lanes.

        One model per distinct static configuration (``static_key``) of: every value of each
        categorical non-scalar field; the high end of an integer range on a width field
        (``role == "width"``: every layer at its widest); every integer of another integer
        range on a static field; scalar hyperparameters at the base's values. Conditions apply
        as in ``config_of`` (a condition that reads a ranged value is evaluated at the range's
        ends). So every sample equals, in its static fields, one of these models, but for its
        widths, which are at most the model's, layer by layer (same depth). For a finite space
        these are its cohorts' static configurations. A search plans its programs from them
        once.

        Args:
          max_combinations: refuse (``ValueError``) to enumerate more combinations than this.

        Returns:
          A list of ``ModelConfig``, one per static variant, in first-seen order.

        Example:
          >>> from jrobust import zoo
          >>> from jrobust.space import intrange, loguniform
          >>> space = SearchSpace(zoo.mlp_config(), learning_rate=loguniform(1e-4, 1e-1),
          ...                     hidden=intrange(8, 64), activation=["relu", "tanh"])
          >>> [(m.architecture.hidden, m.architecture.activation) for m in space.envelope()]
          [((64, 64), 'relu'), ((64, 64), 'tanh')]
        """
        if self._listed:
            first: dict[tuple, ModelConfig] = {}
            for model in self._models:
                first.setdefault(model.static_key(), model)
            return list(first.values())
        axes = {f: self._probes(f) for f in self.choices}
        total = math.prod(len(v) for v in axes.values())
        if total > max_combinations:
            sizes = ", ".join(f"{f}: {len(v)}" for f, v in axes.items() if len(v) > 1)
            raise ValueError(
                f"the envelope would enumerate {total} combinations ({sizes}), more than "
                f"max_combinations={max_combinations}; give a static field fewer values (a list "
                "instead of an integer range) or raise max_combinations"
            )
        variants: dict[tuple, ModelConfig] = {}
        for combo in itertools.product(*axes.values()):
            values = dict(zip(axes, combo, strict=True))
            inactive: set[str] = set()
            try:
                config = self._widest(self._assign(values, inactive), inactive)
            except (ValueError, TypeError) as err:
                raise ValueError(f"the values {values} give an invalid model: {err}") from None
            variants.setdefault(config.static_key(), config)
        return list(variants.values())

    def _probes(self, field: str) -> list[Any]:
        """The values of one choice that the envelope enumerates."""
        choice, role = self.choices[field], self.role(field)
        if isinstance(choice, Distribution):
            ends = [choice.low, choice.high]
            if role == "static":  # an integer range on a static field: every value
                return list(range(choice.low, choice.high + 1))
            if self.when:  # a condition may read the value: try both ends
                return ends
            return [choice.high]
        if role == "scalar" and not self.when:  # no program depends on it
            return choice[:1]
        return list(choice)

    def _widest(self, config: ModelConfig, inactive: set[str]) -> ModelConfig:
        """A model with every applied width range at its high end and the base's scalars."""
        for field, choice in self.choices.items():
            if field not in inactive and self.role(field) == "width":
                current = get_field(config, field)
                value = (choice.high,) * len(current) if isinstance(current, tuple) else choice.high
                config = set_field(config, field, value)
        try:
            return dataclasses.replace(config, **{f: getattr(self.base, f) for f in SCALAR_FIELDS})
        except (ValueError, TypeError):  # e.g. the base's weight decay with a variant's Adam
            return config

    # ------------------------------------------------------------------ the list of models
    def _infinite(self) -> InfiniteSpaceError:
        ranges = ", ".join(
            f"{f}={c!r}" for f, c in self.choices.items() if isinstance(c, Distribution)
        )
        return InfiniteSpaceError(
            f"this search space has ranges ({ranges}), so it has no list of models to count, "
            "list, name or group: search it with jrobust.search(space, population, budget=...) "
            "or draw models with space.sample(n, seed=...)"
        )

    @property
    def _models(self) -> list[ModelConfig]:
        if self._model_list is None:
            raise self._infinite()
        return self._model_list

    def __add__(self, other: SearchSpace) -> SearchSpace:
        if not isinstance(other, SearchSpace):
            return NotImplemented
        if not (self.is_finite and other.is_finite):
            raise InfiniteSpaceError(
                "spaces with ranges do not add up: search each space on its own, or make the "
                "alternatives a choice of one space (e.g. architecture=[...])"
            )
        if self._names is not None and other._names is not None:
            return SearchSpace.from_models([*self, *other], [*self.names(), *other.names()])
        return SearchSpace.from_models(list(self) + list(other))

    def __bool__(self) -> bool:  # never empty; and bool() must not ask a space with ranges its len
        return True

    def __len__(self) -> int:
        return len(self._models)

    def __iter__(self):
        return iter(self._models)

    def __getitem__(self, model_id: int) -> ModelConfig:
        return self._models[model_id]

    @property
    def models(self) -> list[ModelConfig]:
        return list(self._models)

    # ------------------------------------------------------------------ cohorts and names
    def cohort_ids(self) -> list[int]:
        """The cohort of each model (models sharing every static field share a cohort)."""
        keys: dict[tuple, int] = {}
        return [keys.setdefault(m.static_key(), len(keys)) for m in self._models]

    @property
    def n_cohorts(self) -> int:
        return len(set(self.cohort_ids()))

    def programs(
        self,
        merge: str = "auto",
        waste: float | None = None,
        input_shape: tuple[int, ...] = (15, 15, 1),
    ) -> list[list[int]]:
        """The model ids of each program a race would compile (see ``jrobust._src.programs``),
        without training anything.

        Args:
          merge: ``"auto"`` (merge while the padded work stays within ``waste``), ``"none"``
            (one program per cohort) or ``"max"``.
          waste: the bound of ``"auto"`` (default ``jrobust._src.programs.DEFAULT_WASTE``).
          input_shape: the data's input shape, which decides the FLOPs (default: the
            calorimeter's 15x15 clusters).

        Example:
          >>> from jrobust import zoo
          >>> space = SearchSpace(zoo.paper_config(1), dense=[(9,), (16, 9)], l2=[0.0, 0.01])
          >>> space.n_cohorts, len(space.programs()), len(space.programs(merge="none"))
          (2, 1, 2)
        """
        plans = plan_programs(self._models, tuple(input_shape), merge=merge, waste=waste)
        return [list(p.model_ids) for p in plans]

    def varied_fields(self) -> list[str]:
        """Fields (config or architecture) whose value differs between models."""
        every = sorted({f for m in self._models for f in _all_fields(m)})

        def varies(field: str) -> bool:  # among the models whose architecture has the field
            return (
                len({format_value(get_field(m, field)) for m in self._models if _has(m, field)}) > 1
            )

        names = [f for f in [*self.choices] or every if varies(f)]
        if not names and len(self._models) > 1:
            names = [f for f in every if varies(f)]
        return names

    def names(self) -> list[str]:
        """A readable name per model: the values of the fields that differ (``lr=0.001 bs=32``)."""
        if self._names is not None:
            return list(self._names)
        fields = self.varied_fields()
        kinds = {type(m.architecture).__name__ for m in self._models}
        out = []
        for i, m in enumerate(self._models):
            parts = [
                f"{SHORT_NAMES.get(f, f)}={format_value(get_field(m, f))}"
                for f in fields
                if f != "name" and _has(m, f)
            ]
            if len(kinds) > 1:  # a space of several architectures: say which one
                parts.insert(0, type(m.architecture).__name__.lower())
            if m.name and ("name" in fields or not parts):
                parts.insert(0, m.name)
            out.append(" ".join(parts) if parts else f"model{i}")
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per model: ``model_id``, ``name``, ``cohort`` and each varied field."""
        frame = pd.DataFrame(
            {"model_id": range(len(self)), "name": self.names(), "cohort": self.cohort_ids()}
        )
        for field in self.varied_fields():
            values = [_value(m, field) for m in self._models]
            frame[field] = [
                v if isinstance(v, int | float | str | bool) else format_value(v) for v in values
            ]
        return frame

    def __repr__(self) -> str:
        if not self.is_finite:
            shown = ", ".join(
                f"{f}={c!r}" if isinstance(c, Distribution) else f"{f}={format_value(c)}"
                for f, c in self.choices.items()
            )
            return f"SearchSpace(with ranges: {shown})"
        return f"SearchSpace({len(self)} models in {self.n_cohorts} cohorts, varying {self.varied_fields()})"


def _has(config: ModelConfig, field: str) -> bool:
    return field in CONFIG_FIELDS or field in architecture_fields(config)


def _value(config: ModelConfig, field: str) -> Any:
    """A field's value, or ``None`` where the model's architecture has no such field."""
    return get_field(config, field) if _has(config, field) else None


def _all_fields(config: ModelConfig) -> list[str]:
    fields = {f for f in CONFIG_FIELDS if f not in ("architecture", "name")}
    return sorted(fields | (architecture_fields(config) - CONFIG_FIELDS))


def _set_unchecked(config: ModelConfig, field: str, value: Any) -> ModelConfig:
    """A copy of ``config`` with one field replaced, not validated (a draft; see ``_checked``)."""
    if field in CONFIG_FIELDS:
        return _copy_with(config, field, value)
    return _copy_with(config, "architecture", _copy_with(config.architecture, field, value))


def _copy_with(obj: Any, field: str, value: Any) -> Any:
    out = copy.copy(obj)
    object.__setattr__(out, field, value)  # frozen dataclasses: a draft, rebuilt by _checked
    return out


def _checked(draft: ModelConfig) -> ModelConfig:
    """The draft rebuilt through the constructors, which normalise and validate every field."""
    arch = draft.architecture
    if dataclasses.is_dataclass(arch):
        arch = dataclasses.replace(arch)
    return dataclasses.replace(draft, architecture=arch)


# ------------------------------------------------------------------------------ ranges
def _field_type(config: ModelConfig, field: str) -> str:
    """The annotation of a config or architecture field, as text (``"int"``, ``"tuple[int, ...]"``)."""
    owner = ModelConfig if field in CONFIG_FIELDS else type(config.architecture)
    for f in dataclasses.fields(owner):
        if f.name == field:
            return f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    return ""


def _check_range(base: ModelConfig, field: str, dist: Distribution) -> None:
    """A range must fit its field: any number for a scalar hyperparameter; an integer range for
    a static field that takes integers (a tuple of them: every entry takes the value)."""
    if field in SCALAR_FIELDS:
        return
    kind = _field_type(base, field)
    if not dist.integer:
        raise ValueError(
            f"{field}={dist!r}: a continuous range needs a scalar hyperparameter "
            f"({', '.join(SCALAR_FIELDS)}); {field} is static (it shapes the compiled program, "
            f"one program per value): give it a list of values"
            + (" or an intrange" if re.search(r"\bint\b", kind) else "")
        )
    takes_int = re.search(r"\bint\b", kind) is not None
    if not takes_int or (kind.startswith("tuple[") and not kind.startswith("tuple[int")):
        raise ValueError(
            f"{field}={dist!r}: {field} takes {kind or 'non-numeric'} values, not integers; "
            "give it a list of values"
        )
    current = get_field(base, field)
    if isinstance(current, tuple) and not current:
        raise ValueError(
            f"{field}={dist!r}: the base model's {field} is empty, and a range sets every entry "
            f"of it; give the base {field} its depth (e.g. {field}=(32,)) or list the tuples"
        )


def _checked_value(field: str, param: Distribution | Categorical, value: Any) -> Any:
    """``value`` as the model takes it (a Python number, or the choice itself), if it is one of
    the parameter's; else a ``ValueError`` naming the parameter."""
    if isinstance(param, Categorical):
        try:
            return param.choices[param.index(value)]
        except ValueError:
            raise ValueError(
                f"{field}={value!r} is not one of its choices {list(param.choices)!r}"
            ) from None
    if isinstance(value, np.generic):
        value = value.item()
    if value not in param:
        raise ValueError(f"{field}={value!r} lies outside its range {param!r}")
    return int(value) if param.integer else float(value)


def _generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (
        isinstance(seed, int | np.integer) and not isinstance(seed, bool) and seed >= 0
    ):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be None, an int >= 0 or a numpy.random.Generator, got {seed!r}")


def _check_count(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n must be an int >= 0 (how many to draw), got {n!r}")
    return int(n)
