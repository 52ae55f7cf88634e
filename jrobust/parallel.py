"""Scale-out: the stacked model axis sharded over every device of one or many hosts.

A 1-D device mesh with the axis ``"models"`` spans all devices (of every process in a multi-host
run, see ``jrobust.distributed``). Every stacked leaf (hyperparameters, model hashes, instance
indices, training subsets; inside the trainer: parameters, optimizer state and keys, which are
derived per lane) is split over that axis; the population is replicated, once per placement. The
stack trainer runs under ``jax.shard_map``: each device trains its own slice of instances and
nothing is communicated during training; the per-instance losses are gathered to every host once
per stack. Bucket sizes are multiples of the device count.
No ``jax.pmap`` (a maintenance-mode wrapper since JAX 0.8).

Memory: ``max_stack`` sizes the stack of one compiled call from the free device memory and the
model's per-instance footprint (``instance_bytes``); ``launch_with_retry`` splits a stack that
still runs out of memory and retries the halves, on every host alike.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jrobust import train
from jrobust.models.layers import Conv, resolve_conv_impl
from jrobust.train import EVAL_CHUNK

__all__ = [
    "MODELS_AXIS",
    "Placement",
    "make_mesh",
    "placement_for",
    "launch_with_retry",
    "is_oom",
    "instance_bytes",
    "free_device_bytes",
    "max_stack",
    "stack_size_for_memory",
]

MODELS_AXIS = "models"


def make_mesh(devices: Sequence[Any] | int | None = None) -> Mesh:
    """A 1-D mesh named ``"models"`` over ``devices`` (a list, a count, or all devices).

    In a multi-host run ``None`` means every device of every process (``jax.devices()``); the
    mesh must include devices of every process, since every process runs every stack.
    """
    all_devices = jax.devices()
    if devices is None:
        devs = all_devices
    elif isinstance(devices, int):
        if not 1 <= devices <= len(all_devices):
            raise ValueError(f"devices={devices}, but {len(all_devices)} devices are available")
        devs = all_devices[:devices]
    else:
        devs = list(devices)
        if not devs:
            raise ValueError("devices is empty; pass None for all devices")
    if jax.process_count() > 1:
        missing = set(range(jax.process_count())) - {d.process_index for d in devs}
        if missing:
            raise ValueError(
                f"in a multi-host run the mesh must include devices of every process, but "
                f"processes {sorted(missing)} have none among the {len(devs)} devices given; "
                "pass devices=None"
            )
    # ``Mesh`` rather than ``jax.make_mesh``: the latter defaults to explicit axis types in recent
    # JAX; the trainer wants the plain (auto) semantics on every supported version.
    return Mesh(np.asarray(devs), (MODELS_AXIS,))


@dataclasses.dataclass(frozen=True)
class Placement:
    """How stacks are laid out: split over the mesh's ``"models"`` axis, data replicated.

    ``last_shardings`` holds the shardings of the stacked arguments last placed (for checks).
    """

    mesh: Mesh
    _state: dict = dataclasses.field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def n_devices(self) -> int:
        return int(self.mesh.devices.size)

    @property
    def local_devices(self) -> list:
        """The mesh's devices that belong to this process."""
        return [d for d in self.mesh.devices.flat if d.process_index == jax.process_index()]

    @property
    def last_shardings(self):
        return self._state.get("last_shardings")

    def _put(self, value, spec):
        sharding = NamedSharding(self.mesh, spec)
        value = np.asarray(value) if not isinstance(value, jax.Array) else value
        if jax.process_count() == 1:
            return jax.device_put(value, sharding)
        host = np.asarray(value)  # every host holds the same full array: take each shard from it
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    def shard(self, args, data):
        """Place the stacked arguments on the mesh and replicate the population (once)."""
        args = jax.tree.map(lambda a: self._put(a, P(MODELS_AXIS)), args)
        self._state["last_shardings"] = jax.tree.map(lambda a: a.sharding, args)
        return args, self.replicate_population(data)

    def shard_abstract(self, args, data):
        """Like ``shard`` for shapes only (``jax.ShapeDtypeStruct``): to compile ahead of data."""
        sharding = NamedSharding(self.mesh, P(MODELS_AXIS))
        args = jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), args
        )
        return args, self.replicate_population(data)

    def replicate_population(self, data):
        """``data`` replicated on every device of the mesh, cached: the population is placed once."""
        cache = self._state.setdefault("population", {})
        hit = cache.get(id(data))
        if hit is not None and hit[0] is data:
            return hit[1]
        placed = self.replicate(data)
        if len(cache) >= 4:  # a few populations at most; drop the oldest
            cache.pop(next(iter(cache)))
        cache[id(data)] = (data, placed)  # keeps ``data`` alive, so its id stays unique
        return placed

    def replicate(self, value):
        return jax.tree.map(lambda a: self._put(a, P()), value)

    def wrap(self, fn):
        """``fn`` run per device on its slice of the stack (no collectives inside)."""
        stacked, shared = P(MODELS_AXIS), P()
        return jax.shard_map(
            fn,
            mesh=self.mesh,
            in_specs=(stacked, stacked, stacked, stacked, shared, shared, shared, shared),
            out_specs=stacked,
            check_vma=False,
        )

    def fetch(self, result):
        """The full result on every host (gathered across processes when there are several)."""
        if jax.process_count() == 1:
            return jax.device_get(result)
        return multihost_utils.process_allgather(result, tiled=True)


def placement_for(devices: Sequence[Any] | int | Mesh | Placement | None) -> Placement | None:
    """The placement a race uses: ``None`` (plain jit) on a single device."""
    if isinstance(devices, Placement):
        return devices
    if isinstance(devices, Mesh):
        return Placement(devices)
    mesh = make_mesh(devices)
    if mesh.devices.size == 1 and jax.process_count() == 1:
        return None
    return Placement(mesh)


# ---------------------------------------------------------------------------------- agreement
def _all_processes(values: np.ndarray) -> np.ndarray:
    """``values`` of every process stacked on a new leading axis (one row per process)."""
    values = np.asarray(values)
    if jax.process_count() == 1:
        return values[None]
    return np.asarray(multihost_utils.process_allgather(values))


def _any_process(flag: bool) -> bool:
    """True when ``flag`` is true on any process (every process gets the same answer)."""
    return bool(_all_processes(np.asarray([int(flag)], np.int32)).max() > 0)


def _min_over_processes(value: int) -> int:
    return int(_all_processes(np.asarray([value], np.int64)).min())


# ---------------------------------------------------------------------------------- memory
_OPT_SLOTS = {"adam": 2, "adamw": 2, "nadam": 2, "nadamw": 2, "rmsprop": 1, "sgd": 1}


def _module_takes_train(module) -> bool:
    try:
        return "train" in inspect.signature(type(module).__call__).parameters
    except (TypeError, ValueError):
        return False


def _leaf_bytes(tree) -> int:
    return sum(
        int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize
        for a in jax.tree.leaves(tree)
        if hasattr(a, "shape") and hasattr(a, "dtype")
    )


def _activation_bytes_per_event(program, population) -> int:
    """Bytes of the activations of one event in one training forward pass (estimated).

    A plain program's submodule outputs are recorded under ``jax.eval_shape`` (nothing is
    computed), plus, for im2col convolutions, the patch tensor (``k * k`` times the
    convolution's input); element-wise activations and pooling between modules are not modules,
    the caller's factor covers them. A merged program's forward pass is a pure function: every
    intermediate value of its jaxpr is counted.
    """
    batch = 2
    x = jax.ShapeDtypeStruct((batch, *population.input_shape), jnp.float32)
    if program.merged:
        model = program.model
        side = jax.ShapeDtypeStruct((batch, model.n_side), jnp.float32)
        params = {p: jax.ShapeDtypeStruct(s, jnp.float32) for p, s in model.shapes.items()}
        jaxpr = jax.make_jaxpr(lambda p, a, s: model.apply(p, a, s, 0))(params, x, side)
        total = sum(_leaf_bytes([v.aval for v in eqn.outvars]) for eqn in jaxpr.jaxpr.eqns)
        return max(1, -(-total // batch))
    model = program.model
    module = model.module
    side = jax.ShapeDtypeStruct((batch, len(program.config.side_features)), jnp.float32)
    call = (x, side) if model.uses_side else (x,)
    kwargs = {"train": True} if _module_takes_train(module) else {}
    total = [0]

    def interceptor(next_fun, args, kw, context):
        out = next_fun(*args, **kw)
        if context.method_name == "__call__" and context.module is not module:
            total[0] += _leaf_bytes(out)
            mod = context.module
            if isinstance(mod, Conv) and args and getattr(mod, "strides", 1) == 1:
                if resolve_conv_impl(mod.impl) == "im2col":
                    total[0] += mod.kernel_size**2 * _leaf_bytes(args[0])
        return out

    def run(variables, *inputs):
        with nn.intercept_methods(interceptor):
            return module.apply(variables, *inputs, mutable=True, **kwargs)

    variables = jax.eval_shape(
        lambda *a: model.init(jax.random.key(0), *a), x, side if model.uses_side else None
    )
    out = jax.eval_shape(run, variables, *call)
    total[0] += _leaf_bytes(out[0]) + _leaf_bytes(x)
    return max(1, -(-total[0] // batch))


def _program(config_or_program, population, conv_impl):
    if isinstance(config_or_program, train.Program):
        return config_or_program
    return train.program_for([config_or_program], population, conv_impl)


def instance_bytes(config, population, *, conv_impl: str | None = None) -> int:
    """Estimated device bytes one instance of ``config`` (a ``ModelConfig`` or a
    ``jrobust.train.Program``) needs while its stack trains.

    Parameters, their gradients, the update, the kept previous values and the optimizer's
    moments (about ``(4 + slots) ×`` the parameter bytes), the activations of one training
    mini-batch (forward and backward: ``2 ×`` the recorded activations), or those of the
    evaluation chunk (``jrobust.train.EVAL_CHUNK`` test events, forward only) when that is larger,
    plus the instance's index vectors. Against XLA's own count (``compiled.memory_analysis()``
    on CPU, paper model 1 and a small CNN) it errs on the large side by about 2-4×;
    ``max_stack`` applies a further safety fraction.
    """
    program = _program(config, population, conv_impl)
    config = program.config
    if program.merged:
        params = 4 * sum(int(np.prod(s)) for s in program.model.shapes.values())
        state = 0
    else:
        model = program.model
        x = jax.ShapeDtypeStruct((config.batch_size, *population.input_shape), jnp.float32)
        side = jax.ShapeDtypeStruct((config.batch_size, len(config.side_features)), jnp.float32)
        variables = jax.eval_shape(
            lambda a, s: model.init(jax.random.key(0), a, s if model.uses_side else None), x, side
        )
        params = _leaf_bytes(variables.get("params", {}))
        state = _leaf_bytes({k: v for k, v in variables.items() if k != "params"})
    slots = _OPT_SLOTS.get(config.optimizer, 2)
    weights = params * (4 + slots) + state * 3
    try:
        per_event = _activation_bytes_per_event(program, population)
    except Exception:  # noqa: BLE001 - an unusual user module: fall back to a generous guess
        per_event = 64 * int(np.prod(population.input_shape)) * 4
    n_eval = min(EVAL_CHUNK, max(len(population.test_index), len(population.val_index), 1))
    train_act = 2 * per_event * config.batch_size
    eval_act = per_event * n_eval
    indices = 4 * (3 * program.train_size + 2 * n_eval)
    return int(weights + max(train_act, eval_act) + indices)


def _host_available_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def free_device_bytes(device=None) -> int:
    """Free memory of ``device`` (default: the first local device) in bytes.

    Accelerators: ``bytes_limit - bytes_in_use`` from ``device.memory_stats()``. CPU devices have
    no such statistics: the host's available memory, shared equally by the process's CPU devices
    (simulated devices share one memory).
    """
    device = device if device is not None else jax.local_devices()[0]
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - some backends do not implement it
        stats = None
    if stats and "bytes_limit" in stats:
        return max(0, int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)))
    n_local = max(1, sum(1 for d in jax.local_devices() if d.platform == device.platform))
    return _host_available_bytes() // n_local


def stack_size_for_memory(
    free_bytes: int,
    per_instance: int,
    n_devices: int = 1,
    *,
    fraction: float = 0.5,
    reserved: int = 0,
    cap: int | None = None,
) -> int:
    """The stack size that fits: per device ``fraction * free_bytes - reserved`` over the instance
    bytes, rounded down to a power of two, times ``n_devices``; at least ``n_devices`` (one lane per
    device), at most ``cap`` rounded down to a multiple of ``n_devices`` (and never below it)."""
    if n_devices < 1:
        raise ValueError(f"n_devices must be positive, got {n_devices}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    budget = fraction * max(0, int(free_bytes)) - max(0, int(reserved))
    per_device = max(1, int(budget // max(1, int(per_instance))))
    per_device = 1 << (per_device.bit_length() - 1)  # a power of two: few distinct programs
    size = per_device * n_devices
    if cap is not None:
        if cap < 1:
            raise ValueError(f"cap (max_bucket) must be a positive number of instances, got {cap}")
        size = min(size, max(n_devices, cap // n_devices * n_devices))
    return int(size)


def max_stack(
    config,
    population,
    placement: Placement | None = None,
    fraction: float = 0.5,
    cap: int | None = None,
    *,
    conv_impl: str | None = None,
) -> int:
    """The largest stack of ``config``'s program (a ``ModelConfig``: its cohort; or a
    ``jrobust.train.Program``) one compiled call should train.

    From the free memory of the placement's devices (the smallest of them, agreed over every
    process of a multi-host run so all hosts choose the same buckets), the population that is
    replicated on each of them, and ``instance_bytes``. A multiple of the device count, at least
    the device count and at most ``cap`` (when the cap is not below the device count).
    """
    n_devices = placement.n_devices if placement is not None else 1
    devices = placement.local_devices if placement is not None else [jax.local_devices()[0]]
    free = min(free_device_bytes(d) for d in devices) if devices else 0
    free = _min_over_processes(free)
    data = population.device_arrays()
    reserved = sum(int(a.size) * a.dtype.itemsize for a in jax.tree.leaves(data))
    per_instance = instance_bytes(config, population, conv_impl=conv_impl)
    return stack_size_for_memory(
        free, per_instance, n_devices, fraction=fraction, reserved=reserved, cap=cap
    )


# ---------------------------------------------------------------------------------- launching
def is_oom(err: BaseException) -> bool:
    text = str(err)
    return "RESOURCE_EXHAUSTED" in text or "Out of memory" in text or "out of memory" in text


def launch_with_retry(configs, instances, population, *, bucket, placement=None, **kwargs):
    """Dispatch one stack; on an out-of-memory error split it in halves and retry each half.

    The stack is waited for, so an error raised while it runs is caught here. In a multi-host run
    the processes agree after every attempt (one small all-gather), so an out-of-memory error on
    any host makes every host split the same way. Returns a list of ``(lane_indices, Pending)``:
    which of the given lanes each part trained.
    """
    subsets = kwargs.pop("subsets", None)
    multiple = placement.n_devices if placement is not None else 1

    def attempt(lanes: np.ndarray, size: int):
        error, part = None, None
        try:
            part = train.launch_stack(
                [configs[j] for j in lanes],
                np.asarray(instances)[lanes],
                population,
                bucket=size,
                placement=placement,
                subsets=None if subsets is None else np.asarray(subsets)[lanes],
                **kwargs,
            )
            jax.block_until_ready(part.result)
        except Exception as err:  # noqa: BLE001 - only memory errors are retried
            if not is_oom(err):
                raise
            error = err
        if not _any_process(error is not None):
            return [(lanes, part)]
        part = None  # another host (or this one) ran out of memory: every host splits alike
        if len(lanes) == 1 or size <= multiple:
            raise RuntimeError(
                f"out of device memory with a stack of {size} instances ({len(lanes)} real, "
                f"{multiple} device(s)); a smaller stack cannot help: use a smaller model, "
                "batch_size or population, or more devices"
                + (f" ({error})" if error is not None else " (on another host)")
            ) from error
        # each half in a stack of at most half the size (a multiple of the device count)
        half_size = (size + 1) // 2
        sub_cap = (half_size + multiple - 1) // multiple * multiple
        halves = (lanes[: len(lanes) // 2], lanes[len(lanes) // 2 :])
        return [
            piece
            for h in halves
            for piece in attempt(h, min(train.bucket_size_for(len(h), multiple), sub_cap))
        ]

    return attempt(np.arange(len(configs)), bucket)
