"""Models: the pure init/apply contract, vmap-friendly layers and the zoo architectures."""

from jrobust.models.contract import Model, make_model
from jrobust.models.layers import Conv, PReLU, max_pool
from jrobust.models.zoo import CNN, MLP, ResNet18

__all__ = ["Model", "make_model", "Conv", "PReLU", "max_pool", "CNN", "MLP", "ResNet18"]
