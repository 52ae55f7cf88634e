"""Memory: how many instances of a program one compiled stack may train on a device.

``max_stack`` sizes the stack of one compiled call from the free device memory and the program's
per-instance footprint (``instance_bytes``), agreed over every host of a multi-host run.
"""

from __future__ import annotations

import inspect

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jrobust._src import train
from jrobust._src.checks import host_available_bytes
from jrobust._src.models.layers import Conv, resolve_conv_impl
from jrobust._src.parallel.hosts import min_over_processes
from jrobust._src.parallel.placement import Placement
from jrobust._src.train import EVAL_CHUNK

__all__ = [
    "free_device_bytes",
    "instance_bytes",
    "max_stack",
    "stack_size_for_memory",
]

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
    ``jrobust._src.train.Program``) needs while its stack trains.

    Parameters, their gradients, the update, the kept previous values and the optimizer's
    moments (about ``(4 + slots) ×`` the parameter bytes), the activations of one training
    mini-batch (forward and backward: ``2 ×`` the recorded activations), or those of the
    evaluation chunk (``jrobust._src.train.EVAL_CHUNK`` test events, forward only) when that is larger,
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
    return host_available_bytes() // n_local


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
    ``jrobust._src.train.Program``) one compiled call should train.

    From the free memory of the placement's devices (the smallest of them, agreed over every
    process of a multi-host run so all hosts choose the same buckets), the population that is
    replicated on each of them, and ``instance_bytes``. A multiple of the device count, at least
    the device count and at most ``cap`` (when the cap is not below the device count).
    """
    n_devices = placement.n_devices if placement is not None else 1
    devices = placement.local_devices if placement is not None else [jax.local_devices()[0]]
    free = min(free_device_bytes(d) for d in devices) if devices else 0
    free = min_over_processes(free)
    data = population.device_arrays()
    reserved = sum(int(a.size) * a.dtype.itemsize for a in jax.tree.leaves(data))
    per_instance = instance_bytes(config, population, conv_impl=conv_impl)
    return stack_size_for_memory(
        free, per_instance, n_devices, fraction=fraction, reserved=reserved, cap=cap
    )
