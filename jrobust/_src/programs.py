"""Programs: the models that share one compiled stack trainer, and the policy that groups them.

A *cohort* is a set of models equal in every static field; a *program* is coarser: models of
the zoo's CNN or MLP families that differ in widths, activation, side features on/off, the
pooling before the head, the dense head's depth, the Adam-family optimizer, the schedule, the
epochs or the training-sample size become lanes of one program (``jrobust._src.models.merged``).
Batch size, convolution depth, input shape, loss and metric stay static.

The grouping policy bounds the *padded work*: every lane of a program pays for the whole merged
model and for the longest lane's steps. ``merge="auto"`` merges cohorts while the program's
padded work stays at most ``(1 + waste)`` times the sum of its lanes' own work (FLOPs per step
from the shapes, times steps); ``merge="none"`` keeps one program per cohort; ``merge="max"``
merges everything mergeable. A user's own Flax module (or a ResNet) keeps its cohort's program.

Example:
  >>> from jrobust import paper_space
  >>> space = paper_space("energy")
  >>> len(plan_programs(space.models, (15, 15, 1), merge="none"))
  768
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from jrobust._src.config import ModelConfig
from jrobust._src.models.merged import _Builder, _heads, _step_flops, architecture_signature
from jrobust._src.models.merged import mergeable_architecture as _mergeable_arch
from jrobust._src.optim import ADAM_FAMILY
from jrobust._src.specs import MERGES, check_merge  # plain Python: RaceSettings checks with them

__all__ = [
    "MERGES",
    "DEFAULT_WASTE",
    "ProgramPlan",
    "check_merge",
    "plan_programs",
    "merge_signature",
    "model_steps",
    "own_flops",
]


#: The default bound on padded work of ``merge="auto"`` (0.5: a program may do at most 1.5x the
#: work of its lanes alone). Chosen by measurement (``benchmarks/programs.py``,
#: ``benchmarks/RESULTS.md``): on the CPU one program costs seconds to compile, so merging pays
#: while the padding costs less than the compile time it saves.
DEFAULT_WASTE = 0.5


def model_steps(config: ModelConfig) -> int:
    """Optimizer steps of one instance: epochs x mini-batches per epoch."""
    return config.epochs * (config.train_size // config.batch_size)


def merge_signature(config: ModelConfig) -> tuple | None:
    """What models of one program must share (``None``: the model keeps its cohort's program).

    Static: the architecture's kind, convolution depth, kernel, padding, bias, earlier pooling
    and outputs; batch size, loss, metric, target, bootstrap, early stopping, augmentation and
    convolution form. The Adam family (Adam, AdamW, NAdam, NAdamW) may mix, with any schedule,
    epochs and training-sample size; another optimizer mixes only with its own kind, schedule
    and step counts.
    """
    if not _mergeable_arch(config.architecture):
        return None
    if config.optimizer in ADAM_FAMILY:
        optimizer: tuple = ("adam",)
    else:
        optimizer = (config.optimizer, config.nesterov, config.schedule, config.warmup_fraction,
                     config.epochs, config.train_size)  # fmt: skip
    return (
        architecture_signature(config.architecture),
        config.batch_size, config.loss, config.metric, config.target, config.bootstrap,
        config.early_stopping, config.augment, config.conv_impl, optimizer,
    )  # fmt: skip


def _variant(config: ModelConfig) -> tuple[Any, bool]:
    return config.architecture, bool(config.side_features)


def _flops(variants: Sequence[tuple[Any, bool]], input_shape, n_side: int) -> float:
    """FLOPs of one event's training step through the merged model of ``variants``."""
    archs = [a for a, _ in variants]
    kind = "mlp" if not hasattr(archs[0], "conv") else "cnn"
    heads = _heads(variants)
    if kind == "cnn" and archs[0].conv:
        depth = len(archs[0].conv)
        widths = tuple(max(a.conv[l] for a in archs) for l in range(depth))
        pools = tuple(dict.fromkeys(a.pool[-1] for a in archs))
    else:
        widths, pools = (), (None,)
    builder = _Builder(kind, archs, input_shape, n_side, widths, pools, heads)
    positions = {}
    if kind == "cnn":
        arch = archs[0]
        h, w = input_shape[0], input_shape[1]
        from jrobust._src.models.merged import _spatial

        for l in range(len(widths)):
            valid = arch.padding.upper() == "VALID"
            positions[f"conv{l}/kernel"] = (h - arch.kernel + 1 if valid else h) * (
                w - arch.kernel + 1 if valid else w
            )
            if l < len(widths) - 1:
                h = _spatial(h, arch.kernel, arch.padding, arch.pool[l])
                w = _spatial(w, arch.kernel, arch.padding, arch.pool[l])
    return _step_flops(builder.shapes, positions)


def own_flops(config: ModelConfig, input_shape: tuple[int, ...]) -> float | None:
    """FLOPs of one training step of one instance, from the shapes: the matrix products of the
    forward pass, of the weight gradients and of the input gradients of every layer but the
    first (none is taken with respect to the data), 2 per multiply-add, for a whole batch;
    elementwise work is not counted. ``None`` for an architecture whose cost is not known (a
    user's module).

    Example:
      >>> from jrobust import zoo
      >>> own_flops(zoo.paper_config(1), (15, 15, 1))  # the paper's model 1, batch 64
      127700352.0
    """
    if not _mergeable_arch(config.architecture):
        return None
    n_side = len(config.side_features)
    return config.batch_size * _flops([_variant(config)], input_shape, n_side)


@dataclasses.dataclass(frozen=True)
class ProgramPlan:
    """One program: its models, its variants (distinct static configurations, one per cohort),
    whether it is merged, and its padded work against its lanes' own (``waste``)."""

    model_ids: tuple[int, ...]
    variants: tuple[ModelConfig, ...]
    merged: bool
    waste: float
    work: float  # FLOPs of one instance of each model, as the program trains them


class _Group:
    """Cohorts being merged: their models, variants, side features and work."""

    def __init__(self, cohort: list[int], config: ModelConfig, input_shape, own: float) -> None:
        self.cohorts = [cohort]
        self.configs = [config]
        self.input_shape = input_shape
        self.own = [own]

    @property
    def side(self) -> tuple[str, ...]:
        return next((c.side_features for c in self.configs if c.side_features), ())

    def padded(self, extra: ModelConfig | None = None) -> float:
        configs = self.configs + ([extra] if extra is not None else [])
        side = next((c.side_features for c in configs if c.side_features), ())
        variants = list(dict.fromkeys(_variant(c) for c in configs))
        per_step = configs[0].batch_size * _flops(variants, self.input_shape, len(side))
        return per_step * max(model_steps(c) for c in configs)

    def waste(self, extra: ModelConfig | None = None, extra_own: float = 0.0, n: int = 0) -> float:
        sizes = [len(c) for c in self.cohorts] + ([n] if extra is not None else [])
        own = self.own + ([extra_own] if extra is not None else [])
        total_own = sum(s * o for s, o in zip(sizes, own, strict=True))
        return sum(sizes) * self.padded(extra) / total_own - 1.0

    def accepts(self, config: ModelConfig) -> bool:
        side = self.side
        return not (config.side_features and side and config.side_features != side)


def plan_programs(
    configs: Sequence[ModelConfig],
    input_shape: tuple[int, ...],
    *,
    merge: str = "auto",
    waste: float | None = None,
) -> list[ProgramPlan]:
    """Group the models of a race into programs (see the module docstring).

    Args:
      configs: the models (model id = index).
      input_shape: the population's input shape (it decides the shapes and so the FLOPs).
      merge: ``"auto"``, ``"none"`` or ``"max"``.
      waste: the bound of ``"auto"`` (default ``DEFAULT_WASTE``).

    Returns:
      The programs, in the order of their first model; every model is in exactly one.
    """
    check_merge(merge, waste)
    bound = DEFAULT_WASTE if waste is None else float(waste)
    cohorts: dict[tuple, list[int]] = {}
    for i, c in enumerate(configs):
        cohorts.setdefault(c.static_key(), []).append(i)
    by_signature: dict[Any, list[list[int]]] = {}
    for key, members in cohorts.items():
        signature = merge_signature(configs[members[0]]) if merge != "none" else None
        by_signature.setdefault(signature if signature is not None else ("own", key), []).append(
            members
        )
    plans = []
    for signature, group in by_signature.items():
        if signature[0] == "own":
            plans += [_plan([g], configs, input_shape, merged=False) for g in group]
            continue
        plans += _merge_group(group, configs, input_shape, merge, bound)
    return sorted(plans, key=lambda p: p.model_ids[0])


def _merge_group(cohorts, configs, input_shape, merge: str, bound: float) -> list[ProgramPlan]:
    own = {
        id(c): own_flops(configs[c[0]], input_shape) * model_steps(configs[c[0]]) for c in cohorts
    }
    order = sorted(cohorts, key=lambda c: (-own[id(c)], c[0]))
    groups: list[_Group] = []
    for cohort in order:
        config = configs[cohort[0]]
        best, best_waste = None, math.inf
        for g in groups:
            if not g.accepts(config):
                continue
            w = g.waste(config, own[id(cohort)], len(cohort))
            if (merge == "max" or w <= bound) and w < best_waste:
                best, best_waste = g, w
        if best is None:
            groups.append(_Group(cohort, config, input_shape, own[id(cohort)]))
        else:
            best.cohorts.append(cohort)
            best.configs.append(config)
            best.own.append(own[id(cohort)])
    return [
        _plan(g.cohorts, configs, input_shape, merged=len(g.cohorts) > 1, group=g) for g in groups
    ]


def _plan(cohorts, configs, input_shape, merged: bool, group: _Group | None = None) -> ProgramPlan:
    ids = tuple(sorted(i for c in cohorts for i in c))
    variants = tuple(configs[c[0]] for c in sorted(cohorts, key=lambda c: c[0]))
    if group is not None and merged:
        return ProgramPlan(ids, variants, True, group.waste(), group.padded())
    own = own_flops(variants[0], input_shape)
    work = own * model_steps(variants[0]) if own is not None else math.nan
    return ProgramPlan(ids, variants, False, 0.0, work)
