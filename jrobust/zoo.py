"""The ready model configurations: the paper's calorimeter models and the zoo's families.

This module is the public face: it re-exports names defined under ``jrobust._src``.
"""

from jrobust._src.presets import (
    PAPER_PARAM_COUNTS,
    cnn_config,
    mlp_config,
    nas_config,
    paper_config,
    resnet18_config,
    riesz_config,
)

__all__ = [
    "PAPER_PARAM_COUNTS",
    "cnn_config",
    "mlp_config",
    "nas_config",
    "paper_config",
    "resnet18_config",
    "riesz_config",
]
