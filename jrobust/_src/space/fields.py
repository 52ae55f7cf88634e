"""Reading, setting and printing one field of a model: a ``ModelConfig`` field or a field of its
architecture (``conv``, ``dense``, ``hidden``, ...). Search spaces, space files and model names
all go through these, so a model prints the same everywhere."""

from __future__ import annotations

import dataclasses
from typing import Any

from jrobust._src.config import ModelConfig

__all__ = [
    "CONFIG_FIELDS",
    "SHORT_NAMES",
    "architecture_fields",
    "format_value",
    "get_field",
    "set_field",
]

CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(ModelConfig))

#: Short labels of the fields that model names mention most.
SHORT_NAMES = {
    "learning_rate": "lr",
    "weight_decay": "wd",
    "batch_size": "bs",
    "train_size": "n",
    "activation": "act",
    "optimizer": "opt",
    "side_features": "side",
}


def architecture_fields(config: ModelConfig) -> frozenset[str]:
    """The fields of ``config``'s architecture (empty for a user's own Flax module)."""
    arch = config.architecture
    if dataclasses.is_dataclass(arch):
        return frozenset(f.name for f in dataclasses.fields(arch))
    return frozenset()


def get_field(config: ModelConfig, field: str) -> Any:
    """The value of a config field, or else of an architecture field."""
    if field in CONFIG_FIELDS:
        return getattr(config, field)
    return getattr(config.architecture, field)


def set_field(config: ModelConfig, field: str, value: Any) -> ModelConfig:
    """A copy of ``config`` with one config or architecture field replaced."""
    if field in CONFIG_FIELDS:
        return dataclasses.replace(config, **{field: value})
    arch = dataclasses.replace(config.architecture, **{field: value})
    return dataclasses.replace(config, architecture=arch)


def format_value(value: Any) -> str:
    """A short text for a field value: ``0.001``, ``32-64``, ``none``, ``CNN``.

    Example:
      >>> format_value((32, 64)), format_value(1e-3), format_value(()), format_value(None)
      ('32-64', '0.001', 'none', 'none')
    """
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "-".join(format_value(v) for v in value) or "none"
    if dataclasses.is_dataclass(value):
        return type(value).__name__
    return str(value)
