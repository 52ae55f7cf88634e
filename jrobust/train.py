"""The vectorised trainer (lower level): a stack of instances of one model as one compiled call.

``make_trainer(config, population)`` returns the jitted ``train(lanes, shared)`` of two named
tuples: ``Lanes`` (per-lane arrays: the scalar hyperparameters, model hashes, instance indices and
training subsets, mapped over) and ``Shared`` (the seed and the device-resident population,
``shared_for``). ``train_stack`` and ``train_instances`` do it for you; an instance trained alone
equals its lane in a stack.
"""

from jrobust._src.config import (
    SCALAR_FIELDS,
    model_hash,
)
from jrobust._src.train import (
    Lanes,
    Shared,
    TrainResult,
    check_compatible,
    fit_to_population,
    lanes_for,
    make_stack_trainer,
    make_trainer,
    n_cached,
    n_compiled,
    shared_for,
    train_instances,
    train_stack,
)

__all__ = [
    "make_trainer",
    "make_stack_trainer",
    "train_stack",
    "train_instances",
    "Lanes",
    "Shared",
    "TrainResult",
    "shared_for",
    "lanes_for",
    "n_compiled",
    "n_cached",
    "SCALAR_FIELDS",
    "model_hash",
    "check_compatible",
    "fit_to_population",
]
