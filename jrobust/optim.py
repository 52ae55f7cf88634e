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

import jax.numpy as jnp
import optax

__all__ = ["make_optimizer", "schedule_shape"]


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
        hp[k] = jnp.asarray(v, jnp.asarray(hp[k]).dtype)
    return state._replace(hyperparams=hp)
