"""Models: the pure init/apply contract, vmap-friendly layers and the architectures.

This module is the public face: it re-exports names defined under ``jrobust._src``.
"""

from jrobust._src.models.architectures import CNN, MLP, Architecture, ResNet18
from jrobust._src.models.contract import Model, make_model
from jrobust._src.models.layers import Conv, PReLU, max_pool
from jrobust._src.models.riesz import RieszLayer, RieszNet, riesz_transform

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
