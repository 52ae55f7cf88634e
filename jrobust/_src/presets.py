"""Ready model configurations: the paper's models, the NAS winners, and the architecture families.

Published as ``jrobust._src.presets`` (``from jrobust import zoo; zoo.paper_config(1)``). Settings of
Boldyrev, Ratnikov, Shevelev, "Approach to Finding a Robust Deep Learning Model", IEEE Access
2025 (arXiv:2505.17254), the table of selected models (see ``docs/paper.md``):

| model | optimizer | lr | batch | regularisation | side features |
|---|---|---|---|---|---|
| 1 energy | NAdam | 1e-4 | 64 | L2 0.01 | none |
| 2 energy | AdamW | 1e-3 | 32 | weight decay 0.1 | total energy |
| 3 position | AdamW | 1e-4 | 32 | weight decay 0.1 | none |
| 4 position | AdamW | 1e-4 | 32 | weight decay 0.1 | barycentre (x, y) |
| NAS 1 | AdamW | 1e-3 | 32 | weight decay 1e-3 | total energy |
| NAS 2 | AdamW | 1e-2 | 32 | weight decay 1e-2 | total energy |

Epochs (50 energy, 100 position) and the 32k training-sample size are the paper's; the helpers
take ``**overrides`` so a quick run can use fewer (``paper_config(1, epochs=5, train_size=2000)``).
The architectures themselves are ``jrobust.models.CNN``, ``MLP`` and ``ResNet18``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jrobust._src.config import ModelConfig
from jrobust._src.models import architectures as _arch
from jrobust._src.models.riesz import RieszNet as _RieszNet
from jrobust._src.specs import did_you_mean

__all__ = [
    "PAPER_PARAM_COUNTS",
    "cnn_config",
    "mlp_config",
    "nas_config",
    "paper_config",
    "resnet18_config",
    "riesz_config",
]

PAPER_PARAM_COUNTS = {1: 23_923, 2: 23_932, 3: 23_644, 4: 23_662, "nas1": 5_756, "nas2": 15_932}

_ENERGY = _arch.CNN(conv=(32, 64), pool=(2, (2, 1)), dense=(9,), activation="relu", side_at=0)
_POSITION = _arch.CNN(
    conv=(32, 64), pool=(2, "global"), dense=(64, 9), activation="prelu", side_at=1
)

_PAPER: dict[int, dict[str, Any]] = {
    1: dict(
        architecture=_ENERGY,
        optimizer="nadam",
        learning_rate=1e-4,
        batch_size=64,
        l2=0.01,
        target="energy",
        epochs=50,
        loss="relative_mse",
        metric="relative_rmse",
    ),
    2: dict(
        architecture=_ENERGY,
        optimizer="adamw",
        learning_rate=1e-3,
        batch_size=32,
        weight_decay=0.1,
        side_features=("total_energy",),
        target="energy",
        epochs=50,
        loss="relative_mse",
        metric="relative_rmse",
    ),
    3: dict(
        architecture=_POSITION,
        optimizer="adamw",
        learning_rate=1e-4,
        batch_size=32,
        weight_decay=0.1,
        target="x",
        epochs=100,
        loss="mse",
        metric="rmse",
    ),
    4: dict(
        architecture=_POSITION,
        optimizer="adamw",
        learning_rate=1e-4,
        batch_size=32,
        weight_decay=0.1,
        side_features=("bary_x", "bary_y"),
        target="x",
        epochs=100,
        loss="mse",
        metric="rmse",
    ),
}

_NAS: dict[int, dict[str, Any]] = {
    1: dict(
        architecture=_arch.CNN(conv=(32, 16), pool=(None, "global"), dense=(32, 9), side_at=1),
        learning_rate=1e-3,
        weight_decay=1e-3,
    ),
    2: dict(
        architecture=_arch.CNN(conv=(32, 16), pool=(None, "global"), dense=(128, 64, 9), side_at=2),
        learning_rate=1e-2,
        weight_decay=1e-2,
    ),
}


def paper_config(n: int, **overrides: Any) -> ModelConfig:
    """The ModelConfig of the paper's model ``n`` (1, 2: energy; 3, 4: position x).

    Example:
      >>> paper_config(1).optimizer, paper_config(1).learning_rate
      ('nadam', 0.0001)
    """
    if n not in _PAPER:
        raise ValueError(
            f"the paper has models 1-4, got {n!r}; for the NAS winners use nas_config(1|2)"
        )
    return ModelConfig(**{"train_size": 32_000, "name": f"paper{n}", **_PAPER[n], **overrides})


def nas_config(n: int, **overrides: Any) -> ModelConfig:
    """The Optuna-TPE winners of the paper's NAS comparison (energy task, AdamW, batch 32)."""
    if n not in _NAS:
        raise ValueError(f"the paper has NAS models 1 and 2, got {n!r}")
    base = dict(
        optimizer="adamw",
        batch_size=32,
        side_features=("total_energy",),
        target="energy",
        epochs=50,
        train_size=32_000,
        loss="relative_mse",
        metric="relative_rmse",
        name=f"nas{n}",
    )
    return ModelConfig(**{**base, **_NAS[n], **overrides})


def _split(arch_type: type, kwargs: dict[str, Any], factory: str) -> tuple[Any, dict[str, Any]]:
    """The architecture's keywords and the ``ModelConfig``'s; an unknown keyword is a
    ``TypeError`` naming the closest field and both lists."""
    names = [f.name for f in dataclasses.fields(arch_type)]
    fields = [f.name for f in dataclasses.fields(ModelConfig) if f.name != "architecture"]
    unknown = [k for k in kwargs if k not in names and k not in fields]
    if unknown:
        named = ", ".join(f"{k!r}{did_you_mean(k, [*names, *fields])}" for k in unknown)
        raise TypeError(
            f"{factory}() got the unknown field{'s' if len(unknown) > 1 else ''} {named}; use a "
            f"field of {arch_type.__name__} ({', '.join(names)}) or of ModelConfig "
            f"({', '.join(fields)})"
        )
    arch = arch_type(**{k: v for k, v in kwargs.items() if k in names})
    return arch, {k: v for k, v in kwargs.items() if k not in names}


def cnn_config(**kwargs: Any) -> ModelConfig:
    """A small-CNN model: ``CNN`` fields (conv, kernel, pool, dense, activation, side_at, ...) and
    ``ModelConfig`` fields in one call.

    Example:
      >>> from jrobust import count_params
      >>> count_params(cnn_config(conv=(16,), pool=(2,), dense=(8,)))
      4769
    """
    arch, rest = _split(_arch.CNN, kwargs, "cnn_config")
    return ModelConfig(architecture=arch, **rest)


def mlp_config(**kwargs: Any) -> ModelConfig:
    """An MLP model: ``MLP`` fields (hidden, activation, side_at, outputs) plus ModelConfig fields."""
    arch, rest = _split(_arch.MLP, kwargs, "mlp_config")
    return ModelConfig(architecture=arch, **rest)


def resnet18_config(**kwargs: Any) -> ModelConfig:
    """The CIFAR ResNet-18 with the CHEP-talk training setup (SGD + Nesterov momentum 0.9,
    one-cycle schedule, flips and crops, cross-entropy, accuracy as the metric)."""
    arch, rest = _split(_arch.ResNet18, kwargs, "resnet18_config")
    base = dict(
        optimizer="sgd",
        momentum=0.9,
        nesterov=True,
        learning_rate=0.12,
        l2=1e-4,
        batch_size=128,
        epochs=30,
        train_size=30_000,
        schedule="onecycle",
        loss="cross_entropy",
        metric="accuracy",
        augment="flip_crop",
    )
    return ModelConfig(architecture=arch, **{**base, **rest})


def riesz_config(**kwargs: Any) -> ModelConfig:
    """A scale-invariant Riesz network (Barisin, Schladitz, Redenbach, "Riesz networks: scale
    invariant neural networks in a single forward pass", J. Math. Imaging Vis. 2024) for square
    images: ``RieszNet`` fields (channels, orders, padding, norm, activation, pool, dense, outputs)
    plus ModelConfig fields; classification by default (10 classes, cross-entropy, AdamW).

    Example:
      >>> from jrobust import count_params
      >>> count_params(riesz_config(), (8, 8, 1))
      7362
    """
    arch, rest = _split(_RieszNet, kwargs, "riesz_config")
    base = dict(
        optimizer="adamw",
        learning_rate=3e-3,
        weight_decay=1e-4,
        batch_size=32,
        epochs=10,
        train_size=1000,
        loss="cross_entropy",
        metric="cross_entropy",
    )
    return ModelConfig(architecture=arch, **{**base, **rest})
