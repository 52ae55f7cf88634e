"""jrobust: robust model selection on JAX.

Trains many instances of every candidate model (different seeds, training samples drawn from one
population, scalar hyperparameters) as one compiled, vmapped computation, and races the candidates:
models whose instance losses are poor or widely spread are eliminated until the robust winner is
left (Boldyrev, Ratnikov, Shevelev, "Approach to Finding a Robust Deep Learning Model",
IEEE Access 2025).

The public names load on first use (PEP 562): ``import jrobust`` itself imports neither JAX nor
NumPy, so the ``jrobust`` command answers ``--help`` at once, and ``jrobust.race`` costs the
import of JAX the first time it is touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from jrobust import _startup  # noqa: F401 - first: Ctrl-C while the command starts
from jrobust._src.signals import Interrupted
from jrobust._version import __version__ as __version__

# name -> (module, attribute); attribute None: the module itself.
_LAZY: dict[str, tuple[str, str | None]] = {
    "ModelConfig": ("jrobust._src.config", "ModelConfig"),
    "Population": ("jrobust.data", "Population"),
    "Race": ("jrobust._src.race.race", "Race"),
    "RaceSettings": ("jrobust._src.settings", "RaceSettings"),
    "SearchSpace": ("jrobust.space", "SearchSpace"),
    "SelectionResult": ("jrobust._src.result", "SelectionResult"),
    "StopRace": ("jrobust._src.select", "StopRace"),
    "count_params": ("jrobust._src.config", "count_params"),
    "data": ("jrobust.data", None),
    "exhaustive": ("jrobust._src.select", "exhaustive"),
    "get_rule": ("jrobust.rules", "get_rule"),
    "get_statistic": ("jrobust.stats", "get_statistic"),
    "load_run": ("jrobust.runfolder", "load_run"),
    "make_mesh": ("jrobust.parallel", "make_mesh"),
    "make_trainer": ("jrobust.train", "make_trainer"),
    "paper_space": ("jrobust.space", "paper_space"),
    "parallel": ("jrobust.parallel", None),
    "race": ("jrobust._src.select", "race"),
    "rules": ("jrobust.rules", None),
    "save_run": ("jrobust.runfolder", "save_run"),
    "search": ("jrobust._src.search.iterate", "search"),
    "stats": ("jrobust.stats", None),
    "train_instances": ("jrobust.train", "train_instances"),
    "train_stack": ("jrobust.train", "train_stack"),
    "zoo": ("jrobust.zoo", None),
}


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'jrobust' has no attribute {name!r}") from None
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


if TYPE_CHECKING:  # what the names are, for type checkers and editors
    from jrobust import data, parallel, rules, stats, zoo
    from jrobust._src.config import ModelConfig, count_params
    from jrobust._src.race.race import Race
    from jrobust._src.result import SelectionResult
    from jrobust._src.search.iterate import search
    from jrobust._src.select import StopRace, exhaustive, race
    from jrobust._src.settings import RaceSettings
    from jrobust.data import Population
    from jrobust.parallel import make_mesh
    from jrobust.rules import get_rule
    from jrobust.runfolder import load_run, save_run
    from jrobust.space import SearchSpace, paper_space
    from jrobust.stats import get_statistic
    from jrobust.train import make_trainer, train_instances, train_stack

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
    "search",
    "stats",
    "train_instances",
    "train_stack",
    "zoo",
]
