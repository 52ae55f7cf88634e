"""Scale-out: the stacked model axis sharded over every device of one or many hosts.

A 1-D device mesh with the axis ``"models"`` spans all devices. Every stacked leaf (hyper-
parameters, model hashes, instance indices, training subsets) is split over that axis; the
population is replicated. The stack trainer runs under ``jax.shard_map``: each device trains its
own slice of instances and nothing is communicated during training; the per-instance losses are
gathered once per stack. Bucket sizes are multiples of the device count.
No ``jax.pmap`` (a maintenance-mode wrapper since JAX 0.8).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

__all__ = ["MODELS_AXIS", "Placement", "make_mesh", "placement_for", "launch_with_retry", "is_oom"]

MODELS_AXIS = "models"


def make_mesh(devices: Sequence[Any] | int | None = None) -> Mesh:
    """A 1-D mesh named ``"models"`` over ``devices`` (a list, a count, or all devices)."""
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
    return Mesh(np.asarray(devs), (MODELS_AXIS,))


@dataclasses.dataclass(frozen=True)
class Placement:
    """How stacks are laid out: split over the mesh's ``"models"`` axis, data replicated."""

    mesh: Mesh

    @property
    def n_devices(self) -> int:
        return int(self.mesh.devices.size)

    def _put(self, value, spec):
        sharding = NamedSharding(self.mesh, spec)
        value = np.asarray(value) if not isinstance(value, jax.Array) else value
        if jax.process_count() == 1:
            return jax.device_put(value, sharding)
        host = np.asarray(value)  # every host holds the same full array: take each shard from it
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    def shard(self, args, data):
        """Place the stacked arguments on the mesh and replicate the population."""
        args = jax.tree.map(lambda a: self._put(a, P(MODELS_AXIS)), args)
        data = jax.tree.map(lambda a: self._put(a, P()), data)
        return args, data

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
        from jax.experimental import multihost_utils

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


def is_oom(err: BaseException) -> bool:
    text = str(err)
    return "RESOURCE_EXHAUSTED" in text or "Out of memory" in text or "out of memory" in text


def launch_with_retry(configs, instances, population, *, bucket, placement=None, **kwargs):
    """Dispatch one stack; on an out-of-memory error split it in halves and retry each half.

    Returns a list of ``(lane_indices, Pending)``: which of the given lanes each part trained.
    """
    from jrobust.train import bucket_size_for, launch_stack

    subsets = kwargs.pop("subsets", None)
    multiple = placement.n_devices if placement is not None else 1

    def attempt(lanes: np.ndarray, size: int):
        try:
            part = launch_stack([configs[j] for j in lanes], np.asarray(instances)[lanes], population,
                                bucket=size, placement=placement,
                                subsets=None if subsets is None else np.asarray(subsets)[lanes], **kwargs)
            jax.block_until_ready(part.result)
            return [(lanes, part)]
        except Exception as err:  # noqa: BLE001 - only memory errors are retried
            if not is_oom(err) or len(lanes) == 1:
                raise
            half = len(lanes) // 2
            sub = bucket_size_for(half, multiple, size // 2 if size // 2 >= multiple else None)
            return attempt(lanes[:half], sub) + attempt(lanes[half:], sub)

    return attempt(np.arange(len(configs)), bucket)
