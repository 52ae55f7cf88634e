"""Optimizer families from optax with per-instance scalar hyperparameters.

The family, Nesterov flag, schedule shape and step count are static (they shape the program);
the learning rate, weight decay, L2, momentum and Adam's betas/epsilon live in the optimizer state
through ``optax.inject_hyperparams``, so each instance of a stack carries its own values and a
sweep over them never recompiles.

L2 (``l2``) is *coupled*: ``l2 * params`` is added to the gradient before the optimizer (so Adam
rescales it). Weight decay (``weight_decay``) is *decoupled*: ``weight_decay * params`` is added
after preconditioning and scaled by the learning rate, as in AdamW (Loshchilov & Hutter).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

__all__ = [
    "ADAM_FAMILY",
    "SCHEDULE_IDS",
    "init_with",
    "lane_schedule_shape",
    "make_lane_optimizer",
    "make_optimizer",
    "schedule_shape",
    "schedule_steps",
]


def schedule_shape(schedule: str, total_steps: int, warmup_fraction: float = 0.3) -> Callable:
    """The learning-rate multiplier as a function of the step count (peak 1).

    - ``constant``: 1.
    - ``cosine``: linear warm-up over ``warmup_fraction`` of the steps, then cosine decay to 0.
    - ``onecycle``: linear rise from 1/25 to 1 over ``warmup_fraction`` of the steps, then cosine
      annealing to 1/1e4 of the peak (the schedule of Smith & Topin as in PyTorch's OneCycleLR).
    """
    total = max(int(total_steps), 1)
    warm = max(int(round(warmup_fraction * total)), 0)
    if schedule == "constant":
        return lambda count: jnp.ones((), jnp.float32)

    def cosine_part(count, start, lo, hi):
        frac = jnp.clip((count - start) / max(total - start, 1), 0.0, 1.0)
        return lo + (hi - lo) * 0.5 * (1.0 + jnp.cos(math.pi * frac))

    if schedule == "cosine":

        def shape(count):
            count = jnp.asarray(count, jnp.float32)
            up = (count + 1.0) / max(warm, 1)
            return jnp.where(count < warm, up, cosine_part(count, warm, 0.0, 1.0))

        return shape
    if schedule == "onecycle":
        initial, final = 1.0 / 25.0, 1.0 / 1e4

        def shape(count):
            count = jnp.asarray(count, jnp.float32)
            up = initial + (1.0 - initial) * count / max(warm, 1)
            return jnp.where(count < warm, up, cosine_part(count, warm, final, 1.0))

        return shape
    raise ValueError(f"unknown schedule {schedule!r}; choose 'constant', 'cosine' or 'onecycle'")


def make_optimizer(
    family: str,
    *,
    nesterov: bool = False,
    schedule: str = "constant",
    total_steps: int = 1,
    warmup_fraction: float = 0.3,
) -> optax.GradientTransformation:
    """An optax transformation whose scalar hyperparameters are injected state.

    Initialise it with per-instance values:
    ``tx.init(params)`` after ``tx = make_optimizer(...)`` uses placeholder values; use
    ``init_with(tx, params, hyper)`` (below) to set them, so they can be ``vmap``-ed.
    """
    shape = schedule_shape(schedule, total_steps, warmup_fraction)

    def factory(learning_rate, weight_decay, l2, momentum, b1, b2, eps):
        parts = [optax.add_decayed_weights(l2)]  # coupled L2: enters the preconditioner
        if family in ("adam", "adamw"):
            parts.append(optax.scale_by_adam(b1=b1, b2=b2, eps=eps))
        elif family in ("nadam", "nadamw"):
            parts.append(optax.scale_by_adam(b1=b1, b2=b2, eps=eps, nesterov=True))
        elif family == "rmsprop":
            parts.append(optax.scale_by_rms(decay=momentum, eps=eps))
        elif family == "sgd":
            parts.append(optax.trace(decay=momentum, nesterov=nesterov))
        else:
            raise ValueError(f"unknown optimizer {family!r}")
        parts.append(optax.add_decayed_weights(weight_decay))  # decoupled decay
        parts.append(optax.scale_by_schedule(lambda count: -learning_rate * shape(count)))
        return optax.chain(*parts)

    return optax.inject_hyperparams(factory)(
        learning_rate=1e-3, weight_decay=0.0, l2=0.0, momentum=0.9, b1=0.9, b2=0.999, eps=1e-8
    )


def init_with(tx: optax.GradientTransformation, params, hyper: dict) -> optax.OptState:
    """``tx.init(params)`` with the injected hyperparameters replaced by ``hyper`` (scalars or tracers)."""
    state = tx.init(params)
    hp = dict(state.hyperparams)
    for k, v in hyper.items():
        if k in hp:  # a lane's other values (its variant, step counts) are not the optimizer's
            hp[k] = jnp.asarray(v, jnp.asarray(hp[k]).dtype)
    return state._replace(hyperparams=hp)


# ---------------------------------------------------------------------------------- per lane
#: Optimizer families whose lanes can share one program: Adam's update with the Nesterov flag
#: and both weight decays as per-lane values (Adam/AdamW differ only in weight_decay, NAdam in
#: the flag).
ADAM_FAMILY = ("adam", "adamw", "nadam", "nadamw")
#: Schedules, numbered as a lane's ``schedule`` value.
SCHEDULE_IDS = {"constant": 0, "cosine": 1, "onecycle": 2}


def lane_schedule_shape(schedule_id, total_steps, warm_steps) -> Callable:
    """``schedule_shape`` with the schedule and its step counts as (traced) per-lane values.

    ``total_steps`` and ``warm_steps`` are the integers ``schedule_shape`` computes on the host
    (see ``schedule_steps``); the arithmetic is the same float32 arithmetic, so a lane follows
    exactly the schedule it would follow alone.
    """
    total = jnp.maximum(jnp.asarray(total_steps, jnp.float32), 1.0)
    warm = jnp.maximum(jnp.asarray(warm_steps, jnp.float32), 0.0)
    initial, final = 1.0 / 25.0, 1.0 / 1e4

    def cosine_part(count, lo, hi):
        frac = jnp.clip((count - warm) / jnp.maximum(total - warm, 1.0), 0.0, 1.0)
        return lo + (hi - lo) * 0.5 * (1.0 + jnp.cos(math.pi * frac))

    def shape(count):
        count = jnp.asarray(count, jnp.float32)
        up = jnp.maximum(warm, 1.0)
        cosine = jnp.where(count < warm, (count + 1.0) / up, cosine_part(count, 0.0, 1.0))
        onecycle = jnp.where(
            count < warm, initial + (1.0 - initial) * count / up, cosine_part(count, final, 1.0)
        )
        sid = jnp.asarray(schedule_id, jnp.float32)
        return jnp.where(sid == 0, 1.0, jnp.where(sid == 1, cosine, onecycle))

    return shape


def schedule_steps(total_steps: int, warmup_fraction: float) -> tuple[int, int]:
    """The ``(total, warm)`` step counts of ``schedule_shape`` (computed on the host)."""
    total = max(int(total_steps), 1)
    return total, max(int(round(warmup_fraction * total)), 0)


def _scale_by_adam_lane(b1, b2, eps, nesterov) -> optax.GradientTransformation:
    """``optax.scale_by_adam`` whose Nesterov flag is a (traced) value: both forms of the
    bias-corrected first moment are formed and one is selected, so either lane gets exactly
    optax's own update."""
    plain = optax.scale_by_adam(b1=b1, b2=b2, eps=eps)
    nadam = optax.scale_by_adam(b1=b1, b2=b2, eps=eps, nesterov=True)

    def update(updates, state, params=None):
        a, new_state = plain.update(updates, state, params)
        b, _ = nadam.update(updates, state, params)
        on = jnp.asarray(nesterov) > 0.5
        return jax.tree.map(lambda x, y: jnp.where(on, y, x), a, b), new_state

    return optax.GradientTransformation(plain.init, update)


def make_lane_optimizer() -> optax.GradientTransformation:
    """The Adam family with every difference between its lanes as an injected per-lane value:
    ``nesterov`` (NAdam), coupled ``l2`` and decoupled ``weight_decay``, and the schedule
    (``schedule`` id, ``total_steps``, ``warm_steps``). Initialise it with ``init_with``.
    """

    def factory(learning_rate, weight_decay, l2, momentum, b1, b2, eps, nesterov, schedule,
                total_steps, warm_steps):  # fmt: skip
        del momentum  # not an Adam-family value; kept so every lane has the same fields
        shape = lane_schedule_shape(schedule, total_steps, warm_steps)
        return optax.chain(
            optax.add_decayed_weights(l2),
            _scale_by_adam_lane(b1, b2, eps, nesterov),
            optax.add_decayed_weights(weight_decay),
            optax.scale_by_schedule(lambda count: -learning_rate * shape(count)),
        )

    return optax.inject_hyperparams(factory)(
        learning_rate=1e-3, weight_decay=0.0, l2=0.0, momentum=0.9, b1=0.9, b2=0.999,
        eps=1e-8, nesterov=0.0, schedule=0.0, total_steps=1.0, warm_steps=0.0,
    )  # fmt: skip
