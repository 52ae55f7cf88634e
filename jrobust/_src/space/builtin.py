"""Ready search spaces: the paper's 6,912-model calorimeter space and the built-in space of
``jrobust run``.

Example:
  >>> len(paper_space("energy")), paper_space("energy").n_cohorts
  (6912, 768)
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import Any

from jrobust._src import presets
from jrobust._src.space.product import SearchSpace
from jrobust._src.specs import BUILTIN_RACE  # plain Python: the command reads it before JAX

__all__ = ["BUILTIN_RACE", "default_spec", "paper_space"]


def paper_space(task: str = "energy", **overrides: Any) -> SearchSpace:
    """A 6912-model space spanning the paper's calorimeter search (2^8 · 3^3 models).

    The paper publishes only its bounds (≤ 30k parameters, ≤ 2 convolutions, ≤ 4 dense layers,
    ReLU/PReLU, AdamW/NAdam; varying widths, convolution parameters, learning rate, batch size,
    regularisation). This preset chooses, around the paper's model 1 (energy) or 3 (position):

    - 2 × first-convolution width {16, 32}, 2 × second-convolution width {32, 64},
      2 × pooling after the second convolution {2×2 stride 1, global},
      2 × dense head {(9,), (16, 9)}, 2 × activation {ReLU, PReLU},
      2 × optimizer {NAdam + L2, AdamW + decoupled weight decay},
      2 × side features {none, the task's inductive bias}, 2 × schedule {constant, cosine};
    - 3 × learning rate {1e-4, 1e-3, 1e-2}, 3 × batch size {32, 64, 128},
      3 × regularisation strength {1e-3, 1e-2, 1e-1} (L2 for NAdam, weight decay for AdamW).

    Every model has at most 28,131 parameters. 768 cohorts of 9 models each (learning rate ×
    regularisation are scalar hyperparameters and share a program).
    """
    if task not in ("energy", "position"):
        raise ValueError(f"task must be 'energy' or 'position', got {task!r}")
    side = ("total_energy",) if task == "energy" else ("bary_x", "bary_y")
    base = presets.paper_config(1 if task == "energy" else 3, name=None, **overrides)
    models = []
    for conv1, conv2, pool2, dense, act, opt, use_side, sched, lr, bs, reg in itertools.product(
        (16, 32),
        (32, 64),
        ((2, 1), "global"),
        ((9,), (16, 9)),
        ("relu", "prelu"),
        ("nadam", "adamw"),
        (False, True),
        ("constant", "cosine"),
        (1e-4, 1e-3, 1e-2),
        (32, 64, 128),
        (1e-3, 1e-2, 1e-1),
    ):
        arch = dataclasses.replace(
            base.architecture,
            conv=(conv1, conv2),
            pool=(2, pool2),
            dense=dense,
            activation=act,
            side_at=0,
        )
        reg_kw = (
            {"l2": reg, "weight_decay": 0.0} if opt == "nadam" else {"l2": 0.0, "weight_decay": reg}
        )
        models.append(
            dataclasses.replace(
                base,
                architecture=arch,
                optimizer=opt,
                side_features=side if use_side else (),
                schedule=sched,
                learning_rate=lr,
                batch_size=bs,
                **reg_kw,
            )
        )
    return SearchSpace.from_models(models)


def default_spec(
    *,
    classification: bool = False,
    input_shape: Sequence[int] = (15, 15, 1),
    num_classes: int | None = None,
    target: str | None = None,
    calorimeter: bool = True,
    pool_size: int | None = None,
) -> list[dict[str, Any]]:
    """The built-in space of ``jrobust run`` as space tables (the ``[[space]]`` format).

    On the calorimeter (energy target): 16 models in 2 cohorts around the paper's energy models
    1 (NAdam, batch 64, L2) and 2 (AdamW, batch 32, weight decay, total energy as a side feature):
    4 learning rates × 2 regularisation strengths each, 3 epochs on 2000-event subsets, so the
    whole race runs in a few minutes on a laptop CPU. For a position target (``x``/``y``) the same
    around models 3 and 4. On other data: small CNNs (image inputs) or MLPs, cross-entropy for
    classification, MSE for regression.

    Args:
      classification, input_shape, num_classes: what the population holds.
      target: the target column (``None``: the population's first).
      calorimeter: the population is the synthetic calorimeter (15×15 clusters with side features).
      pool_size: the population's training pool; the subset size is capped to 80 % of it.

    Returns:
      A list of ``{"base": {...}, "choices": {...}}`` tables for :func:`build_space`.
    """
    train_size = 2000
    if pool_size is not None:
        train_size = max(8, min(train_size, int(pool_size * 0.8)))
    if calorimeter and not classification:
        position = target in ("x", "y")
        first, second = (3, 4) if position else (1, 2)
        common = {"epochs": 3, "train_size": train_size}
        if position:
            common["target"] = target
        reg1 = {"weight_decay": [0.01, 0.1]} if position else {"l2": [0.001, 0.01]}
        return [
            {
                "base": {"model": f"paper{first}", **common},
                "choices": {"learning_rate": [1e-4, 3e-4, 1e-3, 3e-3], **reg1},
            },
            {
                "base": {"model": f"paper{second}", **common},
                "choices": {"learning_rate": [1e-4, 3e-4, 1e-3, 3e-3], "weight_decay": [0.01, 0.1]},
            },
        ]
    image = len(input_shape) == 3
    batch = 32 if train_size >= 256 else max(1, train_size // 8)
    base: dict[str, Any] = {
        "epochs": 5,
        "train_size": train_size,
        "batch_size": batch,
        "optimizer": "adamw",
    }
    if classification:
        base.update(loss="cross_entropy", metric="cross_entropy", outputs=int(num_classes or 2))
    else:
        base.update(loss="mse", metric="rmse")
        if target is not None:
            base["target"] = target
    if image:
        first = {"model": "cnn", "conv": [16], "pool": [2], "dense": [32], **base}
        second = {"model": "cnn", "conv": [16, 32], "pool": [2, "global"], "dense": [32], **base}
    else:
        first = {"model": "mlp", "hidden": [64], **base}
        second = {"model": "mlp", "hidden": [64, 64], **base}
    choices = {"learning_rate": [3e-4, 1e-3, 3e-3, 1e-2], "weight_decay": [1e-4, 1e-2]}
    return [{"base": first, "choices": dict(choices)}, {"base": second, "choices": dict(choices)}]
