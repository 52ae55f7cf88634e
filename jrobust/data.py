"""Populations (the data instances sample from) and their sources.

This module is the public face: it re-exports names defined under ``jrobust._src``.
"""

from jrobust._src.data.calorimeter import (
    CalorimeterConfig,
    calorimeter,
    energy_baseline,
    mean_deposits,
    position_baseline,
    relative_rmse,
    rmse,
    simulate,
    sshape_correct,
)
from jrobust._src.data.population import Population, draw_subsets
from jrobust._src.data.preprocess import log_energy, one_hot, one_hot_labels, standardize
from jrobust._src.data.sources import digits, from_arrays, from_dataframe, from_npz, load, tfds
from jrobust._src.data.transforms import with_transforms

__all__ = [
    "CalorimeterConfig",
    "Population",
    "calorimeter",
    "digits",
    "draw_subsets",
    "energy_baseline",
    "from_arrays",
    "from_dataframe",
    "from_npz",
    "load",
    "log_energy",
    "mean_deposits",
    "one_hot",
    "one_hot_labels",
    "position_baseline",
    "relative_rmse",
    "rmse",
    "simulate",
    "sshape_correct",
    "standardize",
    "tfds",
    "with_transforms",
]
