"""One instance's training as pure functions: the body a program stacks over its lanes.

``train_one`` initialises an instance from its key, trains it for its epochs on its own training
subset (reshuffled every epoch, mini-batches gathered by index from the device-resident
population), optionally stops it early, and tests it. Lanes of a merged program (see
``jrobust._src.models.merged``) also carry their variant, schedule, step counts and training-sample
size as values; a lane whose epochs or mini-batches run out stops updating (its ``active`` mask),
so every lane trains exactly as it would alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jrobust._src.data.population import INIT_STREAM, SHUFFLE_STREAM
from jrobust._src.data.transforms import random_rotate, random_scale
from jrobust._src.optim import init_with

__all__ = [
    "Body",
    "Lanes",
    "Shared",
    "TrainResult",
    "train_one",
    "prefix_permutation",
    "permutation_rounds",
]

EVAL_CHUNK = 256  # test events per evaluated chunk: 0.6x the time of 1024 on XLA:CPU (profiled)
_U32_MAX = int(np.iinfo(np.uint32).max)


class TrainResult(NamedTuple):
    """Per-instance results of one stack; every array has the stack as leading axis."""

    loss: jax.Array  # (B,) float32: the test metric as a loss (lower is better)
    metrics: dict[str, jax.Array]  # name -> (B,) float32
    ok: jax.Array  # (B,) bool: False for failed (non-finite) instances
    epochs: jax.Array  # (B,) int32: epochs trained (fewer with early stopping)
    params: Any = None  # the trained parameters (stacked), when the program keeps them
    transformed: Any = None  # (B, T) float32: the loss on each transformed test set, if any


class Lanes(NamedTuple):
    """The per-lane arguments of a stack (leading axis: its ``B`` lanes; one lane inside
    ``train_one``). A stack trainer maps over these and shares ``Shared``."""

    values: dict[str, Any]  # name -> (B,): scalar hyperparameters, merged-lane choices and steps
    model_hash: Any  # (B,) int32: the model's stable hash (its initialisation stream)
    instance: Any  # (B,) int32: the instance index (its subset and shuffling stream)
    subset: Any  # (B, train_size) int32: event indices of the lane's training subset


class Shared(NamedTuple):
    """The arguments every lane of a stack shares: the seed and the device-resident population."""

    seed: Any  # () int32: the race's root seed
    data: Any  # the population's device arrays (``Population.device_arrays()``)
    test_index: Any  # (n_test,) int32
    val_index: Any  # (n_val,) int32


class Body(NamedTuple):
    """Everything static the body needs (a program builds it once).

    ``init(key, x0, side0, lane) -> variables`` and ``apply(variables, x, side, train, lane) ->
    (pred, new_state)``; ``lane`` is the dict of the instance's per-lane values.
    """

    init: Callable[..., dict]
    apply: Callable[..., tuple]
    tx: optax.GradientTransformation
    loss: str
    metric: str
    classification: bool
    augment: str | None
    early_stopping: int | None
    batch_size: int
    n_batches: int  # the most mini-batches per epoch of any lane
    epochs: int  # the most epochs of any lane
    train_size: int  # the largest training subset of any lane
    per_lane_steps: bool  # lanes differ in epochs or training-sample size
    target_col: int
    side_cols: tuple[int, ...]
    num_classes: int | None
    keep_params: bool = False  # return the trained parameters too
    augment_range: Any = None  # the range of a random rotate/scale augmentation
    transforms: Any = None  # a TransformGrid: test sets evaluated after training


# ---------------------------------------------------------------------------------- losses
def train_loss(name: str, pred: jax.Array, y: jax.Array) -> jax.Array:
    if name == "cross_entropy":
        return optax.softmax_cross_entropy_with_integer_labels(pred, y).mean()
    pred = pred[:, 0]
    err = pred - y
    if name in ("relative_mse", "relative_rmse"):
        err = err / y
    if name == "mae":
        return jnp.abs(err).mean()
    mse = jnp.mean(err**2)
    return jnp.sqrt(mse) if name in ("rmse", "relative_rmse") else mse


def _metric_sums(pred: jax.Array, y: jax.Array, weight: jax.Array, classification: bool) -> dict:
    """Weighted sums from which every test metric follows (weights mask the padded events)."""
    if classification:
        nll = optax.softmax_cross_entropy_with_integer_labels(pred, y)
        correct = (jnp.argmax(pred, -1) == y).astype(jnp.float32)
        return {"nll": jnp.sum(weight * nll), "correct": jnp.sum(weight * correct)}
    err = pred[:, 0] - y
    safe_y = jnp.where(y == 0, 1.0, y)
    return {
        "se": jnp.sum(weight * err**2),
        "ae": jnp.sum(weight * jnp.abs(err)),
        "rse": jnp.sum(weight * (err / safe_y) ** 2),
    }


def _metrics_from_sums(sums: dict, n: int, classification: bool) -> dict[str, jax.Array]:
    if classification:
        acc = sums["correct"] / n
        return {"cross_entropy": sums["nll"] / n, "accuracy": acc, "error_rate": 1.0 - acc}
    mse = sums["se"] / n
    return {
        "mse": mse,
        "rmse": jnp.sqrt(mse),
        "mae": sums["ae"] / n,
        "relative_rmse": jnp.sqrt(sums["rse"] / n),
    }


def as_loss(metric: str, metrics: dict[str, jax.Array]) -> jax.Array:
    return metrics["error_rate"] if metric == "accuracy" else metrics[metric]


# ---------------------------------------------------------------------------------- augmentation
def augment(kind: str | None, key: jax.Array, x: jax.Array, limits: Any = None) -> jax.Array:
    """A training mini-batch, randomly augmented per image with the lane's own key."""
    if kind is None:
        return x
    if kind == "rotate":
        return random_rotate(key, x, limits)
    if kind == "scale":
        return random_scale(key, x, limits[0], limits[1])
    k_flip, k_crop = jax.random.split(key)
    flip = jax.random.bernoulli(k_flip, 0.5, (x.shape[0],))
    x = jnp.where(flip[:, None, None, None], x[:, :, ::-1, :], x)
    if kind == "flip_crop":
        pad = 4
        h, w = x.shape[1], x.shape[2]
        xp = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
        offsets = jax.random.randint(k_crop, (x.shape[0], 2), 0, 2 * pad + 1)
        x = jax.vmap(
            lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, img.shape[-1]))
        )(xp, offsets)
    return x


# ---------------------------------------------------------------------------------- shuffling
def permutation_rounds(n: int) -> int:
    """The sorting rounds ``jax.random.permutation`` makes for ``n`` elements."""
    return int(np.ceil(3 * np.log(max(1, n)) / np.log(_U32_MAX)))


def prefix_permutation(key: jax.Array, n, size: int, rounds) -> jax.Array:
    """``jax.random.permutation(key, n)`` for a traced ``n <= size``, in the first ``n`` of
    ``size`` positions (the rest follow). Random bits of a prefix are the prefix of the bits
    (JAX's partitionable threefry), and a stable sort keeps the ``size - n`` padding keys at the
    end, so the first ``n`` entries are exactly JAX's permutation; ``rounds`` is
    ``permutation_rounds(n)``, given as a (traced) value."""
    x = jnp.arange(size)
    valid = x < n
    for r in range(permutation_rounds(size)):
        key, subkey = jax.random.split(key)
        bits = jax.random.bits(subkey, (size,), jnp.uint32)
        _, shuffled = jax.lax.sort_key_val(jnp.where(valid, bits, jnp.uint32(_U32_MAX)), x)
        x = jnp.where(r < rounds, shuffled, x)
    return x


# ---------------------------------------------------------------------------------- the body
def _gather(body: Body, data, idx):
    """The inputs, targets and side features of the events ``idx`` (gathered from the pool)."""
    x = data["x"][idx]
    y = data["y"][idx] if body.classification else data["y"][idx, body.target_col]
    side = data["side"][idx][:, list(body.side_cols)] if body.side_cols else None
    return x, y, side


def _evaluate(body: Body, variables, lane, data, index, transform=None):
    """Metrics of one instance on an index set, in chunks so memory stays bounded;
    ``transform = (fn, param)`` transforms the inputs first."""
    classification = body.classification
    n = index.shape[0]
    chunk = min(EVAL_CHUNK, n)
    n_chunks = -(-n // chunk)
    padded = jnp.concatenate([index, jnp.zeros((n_chunks * chunk - n,), index.dtype)])
    weights = (jnp.arange(n_chunks * chunk) < n).astype(jnp.float32)

    def step(sums, args):
        idx, w = args
        x, y, side = _gather(body, data, idx)
        if transform is not None:
            x = transform[0](x, transform[1])
        pred, _ = body.apply(variables, x, side, False, lane)
        return jax.tree.map(jnp.add, sums, _metric_sums(pred, y, w, classification)), None

    width = body.num_classes if classification else 1
    dummy_y = jnp.zeros((1,), jnp.int32 if classification else jnp.float32)
    zeros = _metric_sums(jnp.zeros((1, width)), dummy_y, jnp.zeros((1,)), classification)
    zeros = jax.tree.map(jnp.zeros_like, zeros)
    sums, _ = jax.lax.scan(
        step, zeros, (padded.reshape(n_chunks, chunk), weights.reshape(n_chunks, chunk))
    )
    return _metrics_from_sums(sums, n, classification)


def _step(body: Body, lane, data, epoch_on, carry, batch):
    """One optimizer step of one instance; an instance that is stopped, or whose epochs or
    mini-batches are done, keeps its state."""
    params, state, opt_state, finite, active = carry
    idx, aug_key, b = batch
    on = active & epoch_on
    if body.per_lane_steps:
        on = on & (b < lane["n_batches"])
    x, y, side = _gather(body, data, idx)
    x = augment(body.augment, aug_key, x, body.augment_range)

    def loss_fn(p):
        pred, new_state = body.apply({"params": p, **state}, x, side, True, lane)
        return train_loss(body.loss, pred, y), new_state

    (loss, new_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, new_opt = body.tx.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    finite = finite & (jnp.isfinite(loss) | ~on)
    if body.early_stopping is None and not body.per_lane_steps:  # every step updates: no masks
        return (new_params, new_state, new_opt, finite, active), None
    keep = lambda new, old: jax.tree.map(lambda a, c: jnp.where(on, a, c), new, old)  # noqa: E731
    return (keep(new_params, params), keep(new_state, state), keep(new_opt, opt_state), finite,
            active), None  # fmt: skip


def _order(body: Body, lane, subset, ekey):
    """The epoch's order of the instance's subset (its first ``train_size`` entries)."""
    if not body.per_lane_steps:
        return subset[jax.random.permutation(ekey, body.train_size)]
    return subset[prefix_permutation(ekey, lane["train_size"], body.train_size, lane["rounds"])]


def _epoch(body: Body, lane, data, subset, shuffle_key, val_index, carry, epoch_index):
    """One pass over an instance's subset (reshuffled), then its early-stopping check."""
    params, state, opt_state, finite, active, best, wait, epochs_run = carry
    epoch_on = epoch_index < lane["epochs"] if body.per_lane_steps else jnp.array(True)
    ekey = jax.random.fold_in(shuffle_key, epoch_index)
    order = _order(body, lane, subset, ekey)
    n = body.n_batches
    batches = order[: n * body.batch_size].reshape(n, body.batch_size)
    aug_keys = jax.random.split(jax.random.fold_in(ekey, 1), n)
    (params, state, opt_state, finite, _), _ = jax.lax.scan(
        lambda c, b: _step(body, lane, data, epoch_on, c, b),
        (params, state, opt_state, finite, active),
        (batches, aug_keys, jnp.arange(n)),
    )
    epochs_run = epochs_run + (active & epoch_on).astype(jnp.int32)
    if body.early_stopping is not None:
        metrics = _evaluate(body, {"params": params, **state}, lane, data, val_index)
        val = as_loss(body.metric, metrics)
        val = jnp.where(jnp.isfinite(val), val, jnp.inf)
        improved = val < best
        on = active & epoch_on
        best = jnp.where(on & improved, val, best)
        wait = jnp.where(on & ~improved, wait + 1, jnp.where(on, 0, wait))
        active = active & (wait < body.early_stopping)
    return (params, state, opt_state, finite, active, best, wait, epochs_run), None


def train_one(body: Body, lanes: Lanes, shared: Shared) -> TrainResult:
    """Train and test one instance (the function a program stacks over its lanes).

    ``lanes`` holds ONE lane: ``lanes.values`` are the instance's per-lane values (its scalar
    hyperparameters, the optimizer's injected values, and in a merged program its variant and
    step counts).
    """
    lane, subset, instance = lanes.values, lanes.subset, lanes.instance
    seed, data, test_index, val_index = shared
    root = jax.random.key(seed)
    init_key = jax.random.fold_in(
        jax.random.fold_in(jax.random.fold_in(root, INIT_STREAM), lanes.model_hash), instance
    )
    shuffle_key = jax.random.fold_in(jax.random.fold_in(root, SHUFFLE_STREAM), instance)
    x0, _, side0 = _gather(body, data, subset[: body.batch_size])
    variables = body.init(init_key, x0, side0, lane)
    params = variables["params"]
    state = {k: v for k, v in variables.items() if k != "params"}
    opt_state = init_with(body.tx, params, lane)
    true, inf, zero = jnp.array(True), jnp.array(jnp.inf), jnp.array(0)
    carry = (params, state, opt_state, true, true, inf, zero, zero)
    epoch = lambda c, e: _epoch(body, lane, data, subset, shuffle_key, val_index, c, e)  # noqa: E731
    (params, state, _, finite, _, _, _, epochs_run), _ = jax.lax.scan(
        epoch, carry, jnp.arange(body.epochs)
    )
    variables = {"params": params, **state}
    metrics = _evaluate(body, variables, lane, data, test_index)
    loss = as_loss(body.metric, metrics)
    kept = params if body.keep_params else None
    transformed = _transformed(body, variables, lane, data, test_index)
    return TrainResult(loss, metrics, finite & jnp.isfinite(loss), epochs_run, kept, transformed)


def _transformed(body: Body, variables, lane, data, test_index):
    """The loss on every transformed test set of the grid: one ``lax.map`` over each
    transform's parameters, inside the same program (the instance trains once)."""
    grid = body.transforms
    if grid is None:
        return None
    out = []
    for fn, params in zip(grid.functions, grid.params, strict=True):

        def one(param, fn=fn):
            metrics = _evaluate(body, variables, lane, data, test_index, (fn, param))
            return as_loss(body.metric, metrics)

        out.append(jax.lax.map(one, jnp.asarray(params, jnp.float32)))
    return jnp.concatenate(out)


Lane = dict[str, Any]
