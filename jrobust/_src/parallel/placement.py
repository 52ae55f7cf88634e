"""Where a stack's arrays live: its lanes split over a 1-D ``"models"`` mesh, the rest replicated.

A ``Placement`` is data (a mesh and the name of its axis) that the trainer is given:
``train.make_stack_trainer(program, placement)`` writes the stack's sharding once
(``in_specs=(P("models"), P())``), and ``put_lanes``/``put_shared`` place the two arguments of a
stack trainer. In a multi-host run every host holds the same full arrays and each device takes
its shard from them. No ``jax.pmap`` (a maintenance-mode wrapper since JAX 0.8).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

__all__ = ["MODELS_AXIS", "Placement", "make_mesh", "placement_for"]

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
    """How stacks are laid out: the lanes split over the mesh's ``axis``, the rest replicated.

    Attributes:
      mesh: a 1-D ``jax.sharding.Mesh``; axis: the name of its axis.
    """

    mesh: Mesh
    axis: str = MODELS_AXIS

    @property
    def n_devices(self) -> int:
        return int(self.mesh.devices.size)

    @property
    def local_devices(self) -> list:
        """The mesh's devices that belong to this process."""
        return [d for d in self.mesh.devices.flat if d.process_index == jax.process_index()]

    def put(self, tree: Any, spec: P) -> Any:
        """Every leaf of ``tree`` on the mesh with ``spec`` (shapes only for
        ``jax.ShapeDtypeStruct`` leaves, to compile ahead of the data)."""
        sharding = NamedSharding(self.mesh, spec)

        def one(value):
            if isinstance(value, jax.ShapeDtypeStruct):
                return jax.ShapeDtypeStruct(value.shape, value.dtype, sharding=sharding)
            if jax.process_count() == 1:
                return jax.device_put(value, sharding)
            host = np.asarray(value)  # every host holds the same full array: shards from it
            return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

        return jax.tree.map(one, tree)

    def put_lanes(self, lanes: Any) -> Any:
        """A stack's per-lane arguments split over the mesh's axis."""
        return self.put(lanes, P(self.axis))

    def put_shared(self, shared: Any) -> Any:
        """A stack's shared arguments (seed, population, splits) replicated on every device."""
        return self.put(shared, P())

    def fetch(self, result: Any) -> Any:
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
