"""Figures of a race: instance-loss distributions, the elimination path, robustness vs sample size.

This module is the public face: it re-exports names defined under ``jrobust._src``.
"""

from jrobust._src.plots import (
    plot_distributions,
    plot_path,
    plot_sample_size,
    plot_transforms,
    save_figure,
)

__all__ = [
    "plot_distributions",
    "plot_path",
    "plot_sample_size",
    "plot_transforms",
    "save_figure",
]
