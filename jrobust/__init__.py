"""jrobust: robust model selection on JAX.

Trains many instances of every candidate model (different seeds, training samples drawn from one
population, scalar hyperparameters) as one compiled, vmapped computation, and races the candidates:
models whose instance losses are poor or widely spread are eliminated until the robust winner is
left (Boldyrev, Ratnikov, Shevelev, "Approach to Finding a Robust Deep Learning Model",
IEEE Access 2025).
"""

import sys

from jrobust import (
    _startup,  # noqa: F401, I001 - first: Ctrl-C while the command starts
    data,
    parallel,
    presets,
    rules,
    stats,
)
from jrobust._signals import Interrupted
from jrobust._src.race.race import Race
from jrobust._version import __version__ as __version__
from jrobust.config import ModelConfig, count_params
from jrobust.data import Population
from jrobust.parallel import make_mesh
from jrobust.result import SelectionResult
from jrobust.rules import get_rule
from jrobust.runfolder import load_run, save_run
from jrobust.select import StopRace, exhaustive, race
from jrobust.settings import RaceSettings
from jrobust.space import SearchSpace, paper_space
from jrobust.stats import get_statistic
from jrobust.train import make_trainer, train_instances, train_stack

# The ready model configurations are published as ``jrobust.zoo`` (``from jrobust import zoo``,
# ``import jrobust.zoo``); the module that holds them is ``jrobust/presets.py``.
zoo = presets
sys.modules.setdefault(f"{__name__}.zoo", presets)

__all__ = [
    "Interrupted",
    "ModelConfig",
    "Population",
    "Race",
    "RaceSettings",
    "SearchSpace",
    "SelectionResult",
    "StopRace",
    "count_params",
    "data",
    "exhaustive",
    "get_rule",
    "get_statistic",
    "load_run",
    "make_mesh",
    "make_trainer",
    "paper_space",
    "parallel",
    "race",
    "rules",
    "save_run",
    "stats",
    "train_instances",
    "train_stack",
    "zoo",
]
