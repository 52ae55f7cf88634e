"""jrobust: robust model selection on JAX.

Trains many instances of every candidate model (different seeds, training samples drawn from one
population, scalar hyperparameters) as one compiled, vmapped computation, and races the candidates:
models whose instance losses are poor or widely spread are eliminated until the robust winner is
left (Boldyrev, Ratnikov, Shevelev, "Approach to Finding a Robust Deep Learning Model",
IEEE Access 2025).
"""

from jrobust import data, parallel, rules, stats, zoo
from jrobust.config import ModelConfig, count_params
from jrobust.data import Population
from jrobust.parallel import make_mesh
from jrobust.results import load_run, save_run
from jrobust.rules import get_rule
from jrobust.select import SelectionResult, exhaustive, race
from jrobust.space import SearchSpace, paper_space
from jrobust.stats import get_statistic
from jrobust.train import make_trainer, train_instances, train_stack

__version__ = "0.1.0"

__all__ = [
    "ModelConfig",
    "Population",
    "SearchSpace",
    "SelectionResult",
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
