"""The vectorised instance trainer: a stack of instances of one cohort as one compiled computation.

``make_trainer(config, population)`` returns a jitted pure function that trains a *stack* of
instances (possibly of several models that differ only in scalar hyperparameters) inside one
``lax.scan`` over epochs and mini-batches, ``vmap``-ed over the stack. Each instance:

- draws its initial parameters from a key derived from ``(seed, model, instance)``;
- trains on its own training subset (event indices into the device-resident population, the
  same subset for instance ``i`` of every model: common random numbers), reshuffled every epoch
  with a key derived from ``(seed, instance)``; mini-batches are gathered by index, the data is
  never copied per instance;
- optionally stops early (patience on the validation split) through a mask, keeping shapes fixed;
- is evaluated on the fixed test split at the end;
- is flagged as failed when its training or test loss is not finite, without touching the others
  (``vmap`` lanes are independent).

``train_instances(config, population, instance_indices)`` is the user-facing call for one model.
An instance trained alone gives the same loss as inside a stack (to float32 rounding).
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from jrobust.config import CLASSIFICATION, SCALAR_FIELDS, ModelConfig, model_hash
from jrobust.data.population import INIT_STREAM, SHUFFLE_STREAM, Population
from jrobust.models.contract import make_model
from jrobust.models.layers import resolve_conv_impl
from jrobust.optim import init_with, make_optimizer

__all__ = [
    "make_trainer",
    "train_instances",
    "train_stack",
    "launch_stack",
    "collect",
    "n_compiled",
    "n_cached",
    "TrainResult",
    "check_compatible",
    "bucket_size_for",
]

EVAL_CHUNK = 1024


class TrainResult(NamedTuple):
    """Per-instance results of one stack; every array has the stack as leading axis."""

    loss: jax.Array  # (B,) float32: the test metric as a loss (lower is better)
    metrics: dict[str, jax.Array]  # name -> (B,) float32
    ok: jax.Array  # (B,) bool: False for failed (non-finite) instances
    epochs: jax.Array  # (B,) int32: epochs trained (fewer with early stopping)


class _Spec(NamedTuple):
    """Static facts a compiled trainer depends on (hashable)."""

    static_key: tuple
    input_shape: tuple[int, ...]
    n_pool_events: int
    target_col: int
    side_cols: tuple[int, ...]
    n_test: int
    n_val: int
    num_classes: int | None
    conv_impl: str


# ---------------------------------------------------------------------------------- checks
def check_compatible(config: ModelConfig, population: Population) -> None:
    """Raise a clear error, before any compilation, when ``config`` cannot train on ``population``."""
    if not isinstance(config, ModelConfig):
        raise TypeError(f"expected a jrobust.ModelConfig, got {type(config).__name__}")
    if not isinstance(population, Population):
        raise TypeError(
            f"expected a jrobust.data.Population, got {type(population).__name__}; wrap arrays with "
            "jrobust.data.from_arrays(x, y) or jrobust.data.Population(x, y)"
        )
    if config.batch_size > config.train_size:
        raise ValueError(
            f"batch_size={config.batch_size} is larger than the training subset train_size="
            f"{config.train_size}; lower batch_size or raise train_size"
        )
    if not config.bootstrap and config.train_size > population.pool_size:
        raise ValueError(
            f"train_size={config.train_size} is larger than the population's training pool of "
            f"{population.pool_size} events; lower train_size, set bootstrap=True, or use more data"
        )
    if config.is_classification != population.is_classification:
        kind = "classification" if population.is_classification else "regression"
        raise ValueError(
            f"loss {config.loss!r} does not fit the population {population.name!r}, which is a {kind} "
            "set; use loss='cross_entropy' for labels or a regression loss ('mse', ...) for targets"
        )
    population.target_column(config.target)
    population.side_columns(config.side_features)
    if config.early_stopping is not None and len(population.val_index) == 0:
        raise ValueError(
            "early_stopping needs a validation split, but the population has val_size=0; "
            "build the population with val_size > 0"
        )
    if config.augment == "flip_crop" and len(population.input_shape) != 3:
        raise ValueError(
            f"augment='flip_crop' needs image inputs (H, W, C), got {population.input_shape}"
        )
    model = make_model(config, "xla")
    x = jax.ShapeDtypeStruct((2, *population.input_shape), jnp.float32)
    side = jax.ShapeDtypeStruct((2, len(config.side_features)), jnp.float32)
    try:
        variables = jax.eval_shape(lambda x, s: model.init(jax.random.key(0), x, s), x, side)
        out, _ = jax.eval_shape(lambda v, x, s: model.apply(v, x, s), variables, x, side)
    except Exception as err:  # noqa: BLE001 - re-raised with context
        raise ValueError(
            f"the architecture {config.architecture!r} cannot take inputs of shape "
            f"{population.input_shape} (with {len(config.side_features)} side features): {err}"
        ) from None
    want = population.num_classes if population.is_classification else 1
    if out.shape != (2, want):
        raise ValueError(
            f"the architecture gives outputs of shape {out.shape[1:]} per event, expected ({want},); "
            f"set its output width to {want}"
        )


# ---------------------------------------------------------------------------------- losses
def _train_loss(name: str, pred: jax.Array, y: jax.Array) -> jax.Array:
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


def _as_loss(metric: str, metrics: dict[str, jax.Array]) -> jax.Array:
    return metrics["error_rate"] if metric == "accuracy" else metrics[metric]


# ---------------------------------------------------------------------------------- augmentation
def _augment(kind: str | None, key: jax.Array, x: jax.Array) -> jax.Array:
    if kind is None:
        return x
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


# ---------------------------------------------------------------------------------- the trainer
def _spec_of(config: ModelConfig, population: Population, conv_impl: str | None) -> _Spec:
    return _Spec(
        static_key=config.static_key(),
        input_shape=population.input_shape,
        n_pool_events=population.n_events,
        target_col=population.target_column(config.target),
        side_cols=population.side_columns(config.side_features),
        n_test=len(population.test_index),
        n_val=len(population.val_index),
        num_classes=population.num_classes,
        conv_impl=resolve_conv_impl(conv_impl or config.conv_impl),
    )


def make_trainer(config: ModelConfig, population: Population, *, conv_impl: str | None = None):
    """The jitted stack trainer of ``config``'s cohort on ``population``'s shapes (cached).

    Returns ``train(hyper, model_hashes, instances, subsets, seed, data, test_index, val_index)``
    where ``hyper`` maps each name of ``SCALAR_FIELDS`` to a ``(B,)`` array, ``model_hashes`` and
    ``instances`` are ``(B,)`` int32, ``subsets`` is ``(B, train_size)`` int32 event indices, and
    ``data`` is ``population.device_arrays()``. The result is a ``TrainResult``.
    """
    spec = _spec_of(config, population, conv_impl)
    return _jitted(spec, _static_config(config), None)


def _static_config(config: ModelConfig) -> ModelConfig:
    """The config with scalar fields reset, so cohort members share one cache entry."""
    defaults = {
        f: getattr(ModelConfig, f) if hasattr(ModelConfig, f) else 0.0 for f in SCALAR_FIELDS
    }
    return dataclasses.replace(config, name=None, **{k: v for k, v in defaults.items()})


# ---------------------------------------------------------------------------------- the cache
#: Compiled programs (and the jitted functions they come from) kept in memory, least recently
#: used first out. Each holds its executable and constants; a few hundred would fill a GPU host.
CACHE_SIZE = 128
_cache: collections.OrderedDict[tuple, Any] = collections.OrderedDict()
_cache_lock = threading.Lock()
_n_compiled = [0]


def _cached(key: tuple, build: Callable[[], Any]) -> tuple[Any, bool]:
    """``(value, built)``: the cached value for ``key``, built (and the oldest entry dropped
    beyond ``CACHE_SIZE``) when missing."""
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key], False
    value = build()
    with _cache_lock:
        _cache[key] = value
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return value, True


def _jitted(spec: _Spec, config: ModelConfig, placement: Any):
    """The jitted stack trainer; with a placement, sharded over its mesh (no communication)."""

    def build():
        fn = _stack_fn(spec, config, spec.conv_impl)
        return jax.jit(placement.wrap(fn) if placement is not None else fn)

    return _cached(("jit", spec, config, placement), build)[0]


def n_compiled() -> int:
    """How many stack programs this process has compiled (one per cohort and stack size)."""
    return _n_compiled[0]


def n_cached() -> int:
    """How many jitted trainers and compiled programs the in-memory cache holds now."""
    return len(_cache)


class _Parts(NamedTuple):
    """What one compiled stack trainer is made of (all static)."""

    spec: _Spec
    config: ModelConfig
    model: Any
    tx: optax.GradientTransformation
    classification: bool
    n_batches: int


def _gather(parts: _Parts, data, idx):
    """The inputs, targets and side features of the events ``idx`` (gathered from the pool)."""
    spec = parts.spec
    x = data["x"][idx]
    y = data["y"][idx] if parts.classification else data["y"][idx, spec.target_col]
    side = data["side"][idx][:, list(spec.side_cols)] if spec.side_cols else None
    return x, y, side


def _evaluate(parts: _Parts, variables, data, index):
    """Metrics of one instance on an index set, in chunks so memory stays bounded."""
    classification = parts.classification
    n = index.shape[0]
    chunk = min(EVAL_CHUNK, n)
    n_chunks = -(-n // chunk)
    padded = jnp.concatenate([index, jnp.zeros((n_chunks * chunk - n,), index.dtype)])
    weights = (jnp.arange(n_chunks * chunk) < n).astype(jnp.float32)

    def body(sums, args):
        idx, w = args
        x, y, side = _gather(parts, data, idx)
        pred, _ = parts.model.apply(variables, x, side, train=False)
        return jax.tree.map(jnp.add, sums, _metric_sums(pred, y, w, classification)), None

    width = parts.spec.num_classes if classification else 1
    dummy_y = jnp.zeros((1,), jnp.int32 if classification else jnp.float32)
    zeros = _metric_sums(jnp.zeros((1, width)), dummy_y, jnp.zeros((1,)), classification)
    zeros = jax.tree.map(jnp.zeros_like, zeros)
    sums, _ = jax.lax.scan(
        body, zeros, (padded.reshape(n_chunks, chunk), weights.reshape(n_chunks, chunk))
    )
    return _metrics_from_sums(sums, n, classification)


def _step(parts: _Parts, data, carry, batch):
    """One optimizer step of one instance; a stopped (inactive) instance keeps its state."""
    params, state, opt_state, finite, active = carry
    idx, aug_key = batch
    x, y, side = _gather(parts, data, idx)
    x = _augment(parts.config.augment, aug_key, x)

    def loss_fn(p):
        pred, new_state = parts.model.apply({"params": p, **state}, x, side, train=True)
        return _train_loss(parts.config.loss, pred, y), new_state

    (loss, new_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, new_opt = parts.tx.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(active, a, b), new, old)
    finite = finite & (jnp.isfinite(loss) | ~active)
    return (keep(new_params, params), keep(new_state, state), keep(new_opt, opt_state), finite,
            active), None  # fmt: skip


def _epoch(parts: _Parts, data, subset, shuffle_key, val_index, carry, epoch_index):
    """One pass over an instance's subset (reshuffled), then its early-stopping check."""
    config = parts.config
    params, state, opt_state, finite, active, best, wait, epochs_run = carry
    ekey = jax.random.fold_in(shuffle_key, epoch_index)
    order = subset[jax.random.permutation(ekey, config.train_size)]
    n = parts.n_batches
    batches = order[: n * config.batch_size].reshape(n, config.batch_size)
    aug_keys = jax.random.split(jax.random.fold_in(ekey, 1), n)
    (params, state, opt_state, finite, _), _ = jax.lax.scan(
        lambda c, b: _step(parts, data, c, b),
        (params, state, opt_state, finite, active),
        (batches, aug_keys),
    )
    epochs_run = epochs_run + active.astype(jnp.int32)
    if config.early_stopping is not None:
        metrics = _evaluate(parts, {"params": params, **state}, data, val_index)
        val = _as_loss(config.metric, metrics)
        val = jnp.where(jnp.isfinite(val), val, jnp.inf)
        improved = val < best
        best = jnp.where(active & improved, val, best)
        wait = jnp.where(active & ~improved, wait + 1, jnp.where(active, 0, wait))
        active = active & (wait < config.early_stopping)
    return (params, state, opt_state, finite, active, best, wait, epochs_run), None


def _train_one(parts: _Parts, hyper, model_hash_, instance, subset, seed, data, test_index,
               val_index):  # fmt: skip
    """Train and test one instance: the function the stack trainer vmaps."""
    config = parts.config
    root = jax.random.key(seed)
    init_key = jax.random.fold_in(
        jax.random.fold_in(jax.random.fold_in(root, INIT_STREAM), model_hash_), instance
    )
    shuffle_key = jax.random.fold_in(jax.random.fold_in(root, SHUFFLE_STREAM), instance)
    x0, _, side0 = _gather(parts, data, subset[: config.batch_size])
    variables = parts.model.init(init_key, x0, side0)
    params = variables["params"]
    state = {k: v for k, v in variables.items() if k != "params"}
    opt_state = init_with(parts.tx, params, hyper)
    true, inf, zero = jnp.array(True), jnp.array(jnp.inf), jnp.array(0)
    carry = (params, state, opt_state, true, true, inf, zero, zero)
    epoch = lambda c, e: _epoch(parts, data, subset, shuffle_key, val_index, c, e)  # noqa: E731
    (params, state, _, finite, _, _, _, epochs_run), _ = jax.lax.scan(
        epoch, carry, jnp.arange(config.epochs)
    )
    metrics = _evaluate(parts, {"params": params, **state}, data, test_index)
    loss = _as_loss(config.metric, metrics)
    return TrainResult(loss, metrics, finite & jnp.isfinite(loss), epochs_run)


def _stack_fn(spec: _Spec, config: ModelConfig, conv_impl: str):
    """The stack trainer: ``_train_one`` vmapped over the stacked arguments."""
    n_batches = config.train_size // config.batch_size
    tx = make_optimizer(
        config.optimizer,
        nesterov=config.nesterov,
        schedule=config.schedule,
        total_steps=n_batches * config.epochs,
        warmup_fraction=config.warmup_fraction,
    )
    parts = _Parts(
        spec, config, make_model(config, conv_impl), tx, config.metric in CLASSIFICATION, n_batches
    )
    train = lambda *args: _train_one(parts, *args)  # noqa: E731
    return jax.vmap(train, in_axes=(0, 0, 0, 0, None, None, None, None))


# ---------------------------------------------------------------------------------- driving
def check_instances(values: Sequence[int] | np.ndarray) -> np.ndarray:
    """Instance indices as a 1-D ``int32`` array; anything but non-negative integers is an error
    (``0.5`` is not silently instance 0)."""
    arr = np.asarray(values)
    if arr.size and (arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(
            f"instance indices must be non-negative integers, got {arr.reshape(-1)[:5].tolist()} "
            f"(dtype {arr.dtype}); pass e.g. range(8)"
        )
    arr = arr.astype(np.int64).reshape(-1)
    bad = (arr < 0) | (arr > np.iinfo(np.int32).max)
    if bad.any():
        raise ValueError(
            f"instance indices must be non-negative integers below 2**31, got {arr[bad][:5].tolist()}"
        )
    return arr.astype(np.int32)


def bucket_size_for(n: int, multiple: int = 1, cap: int | None = None) -> int:
    """The stack size used for ``n`` instances: the next power of two (times ``multiple``), capped.

    Powers of two keep the number of distinct compiled shapes small while survivors shrink.
    """
    size = 1
    while size < n:
        size *= 2
    size = max(size, multiple)
    size = -(-size // multiple) * multiple
    if cap is not None:
        cap = max(multiple, cap // multiple * multiple)
        size = min(size, cap)
    return size


def train_stack(
    configs: Sequence[ModelConfig],
    instances: Sequence[int] | np.ndarray,
    population: Population,
    *,
    seed: int = 0,
    subsets: np.ndarray | None = None,
    bucket: int | None = None,
    conv_impl: str | None = None,
    placement: Any = None,
) -> dict[str, np.ndarray]:
    """Train pairs ``(configs[j], instances[j])`` of ONE cohort as one stack and return numpy results.

    Args:
      configs: one ModelConfig per lane, all with the same ``static_key()``.
      instances: the instance index of each lane.
      population: the data.
      seed: the race / experiment seed.
      subsets: optional precomputed ``(len, train_size)`` training subsets.
      bucket: pad the stack to this size (``None``: ``bucket_size_for(len)``); padded lanes repeat
        the last pair and are dropped from the result.
      placement: optional ``jrobust.parallel.Placement``: shards the stack over its mesh.

    Returns:
      dict with ``loss``, ``ok``, ``epochs``, every metric (arrays of ``len(configs)``),
      ``seconds`` (wall time of the training) and ``compile_seconds`` (0 when already compiled).
    """
    pending = launch_stack(
        configs,
        instances,
        population,
        seed=seed,
        subsets=subsets,
        bucket=bucket,
        conv_impl=conv_impl,
        placement=placement,
    )
    t0 = time.perf_counter()
    out = collect(pending)
    out["seconds"] = time.perf_counter() - t0
    out["compile_seconds"] = pending.compile_seconds
    return out


class Pending(NamedTuple):
    """A dispatched stack: device results not yet fetched (JAX dispatches asynchronously)."""

    result: TrainResult
    n: int
    compile_seconds: float
    placement: Any = None


def launch_stack(
    configs: Sequence[ModelConfig],
    instances: Sequence[int] | np.ndarray,
    population: Population,
    *,
    seed: int = 0,
    subsets: np.ndarray | None = None,
    bucket: int | None = None,
    conv_impl: str | None = None,
    placement: Any = None,
) -> Pending:
    """Like ``train_stack`` but returns at once with the results still on the device."""
    n = len(configs)
    if n == 0:
        raise ValueError("no instances to train: pass at least one (config, instance) pair")
    key0 = configs[0].static_key()
    if any(c.static_key() != key0 for c in configs):
        raise ValueError(
            "train_stack takes models of one cohort (equal static fields); group them first"
        )
    instances = check_instances(instances)
    if instances.shape != (n,):
        raise ValueError(
            f"got {instances.shape[0]} instance indices for {n} configs; give one per config"
        )
    config = configs[0]
    if subsets is None:
        subsets = population.subset_indices(
            instances, config.train_size, seed=seed, bootstrap=config.bootstrap
        )
    size = bucket or bucket_size_for(n)
    if size < n:
        raise ValueError(f"bucket={size} is smaller than the {n} instances of the stack")
    pad = np.concatenate([np.arange(n), np.full(size - n, n - 1)])
    hyper = {
        f: np.asarray([getattr(configs[j], f) for j in pad], np.float32) for f in SCALAR_FIELDS
    }
    hashes = np.asarray([model_hash(configs[j]) for j in pad], np.int32)
    args = (hyper, hashes, instances[pad], np.asarray(subsets, np.int32)[pad])
    data = population.device_arrays()
    if placement is not None:
        args, data = placement.shard(args, data)
    test_index, val_index = population.device_splits()
    call_args = (*args, np.int32(seed), data, test_index, val_index)
    spec = _spec_of(config, population, conv_impl)
    static = _static_config(config)
    t0 = time.perf_counter()

    def build():
        _n_compiled[0] += 1
        return _jitted(spec, static, placement).lower(*call_args).compile()

    program, built = _cached(("compiled", spec, static, size, placement), build)
    compile_seconds = time.perf_counter() - t0 if built else 0.0
    return Pending(program(*call_args), n, compile_seconds, placement)


def collect(pending: Pending) -> dict[str, np.ndarray]:
    """Fetch a dispatched stack's results as numpy arrays (padded lanes dropped)."""
    if pending.placement is not None:
        result = pending.placement.fetch(pending.result)
    else:
        result = jax.device_get(pending.result)
    n = pending.n
    out = {
        "loss": np.asarray(result.loss)[:n],
        "ok": np.asarray(result.ok)[:n],
        "epochs": np.asarray(result.epochs)[:n],
    }
    for k, v in result.metrics.items():
        out[k] = np.asarray(v)[:n]
    return out


def train_instances(
    config: ModelConfig,
    population: Population,
    instance_indices: Sequence[int] | np.ndarray,
    *,
    seed: int = 0,
    max_stack: int | None = None,
    conv_impl: str | None = None,
) -> pd.DataFrame:
    """Train instances of one model (stacked) and return one row per instance.

    Instance ``i`` draws training subset ``i`` of the population (the same for every model with
    this seed and ``train_size``) and an init key from ``(seed, i, model)``.

    Args:
      config: the model.
      population: the data.
      instance_indices: which instances (non-negative integers, each trained independently).
      seed: the experiment seed.
      max_stack: train at most this many instances per compiled call.

    Returns:
      DataFrame with ``instance``, ``loss`` (the test metric, lower is better), ``status``
      (``"ok"``/``"failed"``), ``epochs`` and every test metric.

    Example:
      >>> import jrobust, numpy as np
      >>> pop = jrobust.data.from_arrays(np.random.rand(300, 4), np.random.rand(300))  # doctest: +SKIP
      >>> cfg = jrobust.zoo.mlp_config(hidden=(8,), train_size=100, batch_size=20, epochs=2)  # doctest: +SKIP
      >>> jrobust.train_instances(cfg, pop, [0, 1])["loss"].shape  # doctest: +SKIP
      (2,)
    """
    instances = check_instances(instance_indices)
    if instances.size == 0:
        raise ValueError("instance_indices is empty; pass e.g. range(8)")
    check_compatible(config, population)
    step = max_stack or bucket_size_for(instances.size)
    parts = []
    for start in range(0, instances.size, step):
        chunk = instances[start : start + step]
        res = train_stack(
            [config] * chunk.size,
            chunk,
            population,
            seed=seed,
            conv_impl=conv_impl,
            bucket=bucket_size_for(chunk.size, cap=step),
        )
        res.pop("seconds")
        res.pop("compile_seconds")
        parts.append(pd.DataFrame({"instance": chunk, **res}))
    frame = pd.concat(parts, ignore_index=True)
    frame["status"] = np.where(frame.pop("ok"), "ok", "failed")
    return frame
