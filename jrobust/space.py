"""Search spaces: the models a race starts with, and their grouping into cohorts.

``SearchSpace(base, **choices)`` is the product of the choices around a base ``ModelConfig``.
A keyword is a ``ModelConfig`` field (``learning_rate``, ``optimizer``, ``batch_size``, ...) or a
field of the base architecture (``conv``, ``dense``, ``activation``, ``hidden``, ...); conditional
parts (``when={"momentum": lambda c: c.optimizer == "sgd"}``) apply a choice only where the
condition holds, and duplicates that result are dropped. Spaces add up with ``+``.

Models that differ only in scalar hyperparameters form a *cohort*: one compiled program trains
them all in one stack.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pandas as pd

from jrobust.config import ModelConfig

__all__ = ["SearchSpace", "paper_space"]

_CONFIG_FIELDS = {f.name for f in dataclasses.fields(ModelConfig)}


def _apply(config: ModelConfig, field: str, value: Any) -> ModelConfig:
    if field in _CONFIG_FIELDS:
        return dataclasses.replace(config, **{field: value})
    arch = dataclasses.replace(config.architecture, **{field: value})
    return dataclasses.replace(config, architecture=arch)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "-".join(_fmt(v) for v in value) or "()"
    if dataclasses.is_dataclass(value):
        return type(value).__name__
    return str(value)


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
        arch_fields = (
            {f.name for f in dataclasses.fields(base.architecture)}
            if dataclasses.is_dataclass(base.architecture)
            else set()
        )
        for field, values in choices.items():
            if field in _CONFIG_FIELDS and field in arch_fields:
                raise ValueError(
                    f"choice {field!r} is both a ModelConfig field and an architecture field; "
                    "it is ambiguous: vary the architecture instead (architecture=[...])"
                )
            if field not in _CONFIG_FIELDS and field not in arch_fields:
                raise ValueError(
                    f"unknown search-space field {field!r}; use a ModelConfig field "
                    f"({sorted(_CONFIG_FIELDS)}) or a field of {type(base.architecture).__name__} "
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
        if not self._models:
            raise ValueError("the search space is empty")

    @classmethod
    def from_models(cls, models: Sequence[ModelConfig]) -> SearchSpace:
        """A space that is an explicit list of models."""
        models = list(models)
        if not models:
            raise ValueError("the search space is empty: give at least one model")
        if not all(isinstance(m, ModelConfig) for m in models):
            raise TypeError("from_models takes jrobust.ModelConfig objects")
        space = cls.__new__(cls)
        space.base, space.choices, space.when = models[0], {}, {}
        space._models = list(dict.fromkeys(models))
        return space

    def _expand(self) -> list[ModelConfig]:
        fields = list(self.choices)
        seen: dict[ModelConfig, None] = {}
        for combo in itertools.product(*(self.choices[f] for f in fields)):
            config = self.base
            try:
                for field, value in zip(fields, combo, strict=True):
                    config = _apply(config, field, value)
                for field, predicate in self.when.items():
                    if not predicate(config):
                        config = _apply(config, field, _get(self.base, field))
            except (ValueError, TypeError) as err:
                raise ValueError(
                    f"the choice {dict(zip(fields, combo, strict=True))} gives an invalid model: {err}"
                ) from None
            seen.setdefault(config, None)
        return list(seen)

    def __add__(self, other: SearchSpace) -> SearchSpace:
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

    def varied_fields(self) -> list[str]:
        """Fields (config or architecture) whose value differs between models."""
        names = []
        for field in [*self.choices] or _all_fields(self._models[0]):
            if len({_fmt(_get(m, field)) for m in self._models}) > 1:
                names.append(field)
        if not names and len(self._models) > 1:
            names = [
                f
                for f in _all_fields(self._models[0])
                if len({_fmt(_get(m, f)) for m in self._models}) > 1
            ]
        return names

    def names(self) -> list[str]:
        fields = self.varied_fields()
        out = []
        for i, m in enumerate(self._models):
            parts = [f"{f}={_fmt(_get(m, f))}" for f in fields if f != "name"]
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
            values = [_get(m, field) for m in self._models]
            frame[field] = [
                v if isinstance(v, int | float | str | bool) else _fmt(v) for v in values
            ]
        return frame

    def __repr__(self) -> str:
        return f"SearchSpace({len(self)} models in {self.n_cohorts} cohorts, varying {self.varied_fields()})"


def _get(config: ModelConfig, field: str) -> Any:
    if field in _CONFIG_FIELDS:
        return getattr(config, field)
    return getattr(config.architecture, field)


def _all_fields(config: ModelConfig) -> list[str]:
    fields = [f for f in _CONFIG_FIELDS if f not in ("architecture", "name")]
    if dataclasses.is_dataclass(config.architecture):
        fields += [
            f.name for f in dataclasses.fields(config.architecture) if f.name not in _CONFIG_FIELDS
        ]
    return sorted(fields)


def paper_space(task: str = "energy", **overrides: Any) -> SearchSpace:
    """A 6912-model space spanning the paper's calorimeter search (2^8 · 3^3 models).

    The paper publishes only its bounds (≤ 30k parameters, ≤ 2 convolutions, ≤ 4 dense layers,
    ReLU/PReLU, AdamW/NAdam; varying widths, convolution parameters, learning rate, batch size,
    regularisation). This preset chooses, around the paper's model 1 (energy) or 3 (position):

    - 2 × first-convolution width {16, 32}, 2 × second-convolution width {32, 64},
      2 × pooling after the second convolution {2×2 stride 1, global},
      2 × dense head {(9,), (16, 9)}, 2 × activation {ReLU, PReLU},
      2 × optimizer {NAdam + L2, AdamW + decoupled weight decay},
      2 × side features {none, the task's inductive bias}, 2 × schedule {constant, cosine};
    - 3 × learning rate {1e-4, 1e-3, 1e-2}, 3 × batch size {32, 64, 128},
      3 × regularisation strength {1e-3, 1e-2, 1e-1} (L2 for NAdam, weight decay for AdamW).

    Every model has at most 28,131 parameters. 768 cohorts of 9 models each (learning rate ×
    regularisation are scalar hyperparameters and share a program).
    """
    from jrobust import zoo

    if task not in ("energy", "position"):
        raise ValueError(f"task must be 'energy' or 'position', got {task!r}")
    side = ("total_energy",) if task == "energy" else ("bary_x", "bary_y")
    base = zoo.paper_config(1 if task == "energy" else 3, name=None, **overrides)
    models = []
    for conv1, conv2, pool2, dense, act, opt, use_side, sched, lr, bs, reg in itertools.product(
        (16, 32),
        (32, 64),
        ((2, 1), "global"),
        ((9,), (16, 9)),
        ("relu", "prelu"),
        ("nadam", "adamw"),
        (False, True),
        ("constant", "cosine"),
        (1e-4, 1e-3, 1e-2),
        (32, 64, 128),
        (1e-3, 1e-2, 1e-1),
    ):
        arch = dataclasses.replace(
            base.architecture,
            conv=(conv1, conv2),
            pool=(2, pool2),
            dense=dense,
            activation=act,
            side_at=0,
        )
        reg_kw = (
            {"l2": reg, "weight_decay": 0.0} if opt == "nadam" else {"l2": 0.0, "weight_decay": reg}
        )
        models.append(
            dataclasses.replace(
                base,
                architecture=arch,
                optimizer=opt,
                side_features=side if use_side else (),
                schedule=sched,
                learning_rate=lr,
                batch_size=bs,
                **reg_kw,
            )
        )
    return SearchSpace.from_models(models)
