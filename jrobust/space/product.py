"""The product space: the models a race starts with, and their grouping into cohorts.

``SearchSpace(base, **choices)`` is the product of the choices around a base ``ModelConfig``.
A keyword is a ``ModelConfig`` field (``learning_rate``, ``optimizer``, ``batch_size``, ...) or a
field of the base architecture (``conv``, ``dense``, ``activation``, ``hidden``, ...); conditional
parts (``when={"momentum": lambda c: c.optimizer == "sgd"}``) apply a choice only where the
condition holds, and duplicates that result are dropped. Spaces add up with ``+``.

Models that differ only in scalar hyperparameters form a *cohort*: one compiled program trains
them all in one stack.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pandas as pd

from jrobust.config import ModelConfig
from jrobust.programs import plan_programs
from jrobust.space.fields import (
    CONFIG_FIELDS,
    SHORT_NAMES,
    architecture_fields,
    format_value,
    get_field,
    set_field,
)

__all__ = ["SearchSpace"]


class SearchSpace:
    """The product of choices around a base model.

    Args:
      base: the model every choice modifies (default ``ModelConfig()``).
      when: optional conditions ``{field: predicate(config) -> bool}``; a field's choices apply
        only to models where its predicate holds (elsewhere it keeps the base value).
      **choices: ``field=[values...]``, a ``ModelConfig`` field or a field of the base
        architecture.

    Example:
      >>> from jrobust import zoo
      >>> space = SearchSpace(zoo.paper_config(1), learning_rate=[1e-4, 1e-3], batch_size=[32, 64])
      >>> len(space), space.n_cohorts
      (4, 2)
    """

    def __init__(
        self,
        base: ModelConfig | None = None,
        *,
        when: dict[str, Callable[[ModelConfig], bool]] | None = None,
        **choices: Sequence[Any],
    ) -> None:
        base = base if base is not None else ModelConfig()
        if not isinstance(base, ModelConfig):
            raise TypeError(f"base must be a jrobust.ModelConfig, got {type(base).__name__}")
        arch_fields = architecture_fields(base)
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
            if isinstance(values, str | bytes) or not isinstance(values, Iterable):
                raise TypeError(f"choices for {field!r} must be a list of values, got {values!r}")
            if len(list(values)) == 0:
                raise ValueError(f"choices for {field!r} are empty; give at least one value")
        when = dict(when or {})
        unknown = set(when) - set(choices)
        if unknown:
            raise ValueError(f"conditions given for fields without choices: {sorted(unknown)}")
        self.base = base
        self.choices = {k: list(v) for k, v in choices.items()}
        self.when = when
        self._models: list[ModelConfig] = self._expand()
        self._names: list[str] | None = None
        if not self._models:
            raise ValueError("the search space is empty")

    @classmethod
    def from_models(
        cls, models: Sequence[ModelConfig], names: Sequence[str] | None = None
    ) -> SearchSpace:
        """A space that is an explicit list of models (repeats dropped), optionally named.

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
        given = dict(zip(models, names, strict=True)) if names is not None else {}
        space._models = list(dict.fromkeys(models))
        space._names = [given[m] for m in space._models] if names is not None else None
        return space

    def _expand(self) -> list[ModelConfig]:
        fields = list(self.choices)
        seen: dict[ModelConfig, None] = {}
        for combo in itertools.product(*(self.choices[f] for f in fields)):
            config = self.base
            try:
                for field, value in zip(fields, combo, strict=True):
                    config = set_field(config, field, value)
                for field, predicate in self.when.items():
                    if not predicate(config):
                        config = set_field(config, field, get_field(self.base, field))
            except (ValueError, TypeError) as err:
                raise ValueError(
                    f"the choice {dict(zip(fields, combo, strict=True))} gives an invalid model: {err}"
                ) from None
            seen.setdefault(config, None)
        return list(seen)

    def __add__(self, other: SearchSpace) -> SearchSpace:
        if self._names is not None and other._names is not None:
            return SearchSpace.from_models([*self, *other], [*self.names(), *other.names()])
        return SearchSpace.from_models(list(self) + list(other))

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
        """The model ids of each program a race would compile (see ``jrobust.programs``),
        without training anything.

        Args:
          merge: ``"auto"`` (merge while the padded work stays within ``waste``), ``"none"``
            (one program per cohort) or ``"max"``.
          waste: the bound of ``"auto"`` (default ``jrobust.programs.DEFAULT_WASTE``).
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
        return f"SearchSpace({len(self)} models in {self.n_cohorts} cohorts, varying {self.varied_fields()})"


def _has(config: ModelConfig, field: str) -> bool:
    return field in CONFIG_FIELDS or field in architecture_fields(config)


def _value(config: ModelConfig, field: str) -> Any:
    """A field's value, or ``None`` where the model's architecture has no such field."""
    return get_field(config, field) if _has(config, field) else None


def _all_fields(config: ModelConfig) -> list[str]:
    fields = {f for f in CONFIG_FIELDS if f not in ("architecture", "name")}
    return sorted(fields | (architecture_fields(config) - CONFIG_FIELDS))
