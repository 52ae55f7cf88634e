"""Models: the pure init/apply contract, vmap-friendly layers and the architectures.

Public names live here once: ``jrobust.models.CNN`` (not the modules that define them).
"""

from jrobust._src.models import (
    CNN,
    MLP,
    Architecture,
    Conv,
    Model,
    PReLU,
    ResNet18,
    RieszLayer,
    RieszNet,
    make_model,
    max_pool,
    riesz_transform,
)

__all__ = [
    "CNN",
    "MLP",
    "Architecture",
    "Conv",
    "Model",
    "PReLU",
    "ResNet18",
    "RieszLayer",
    "RieszNet",
    "make_model",
    "max_pool",
    "riesz_transform",
]
