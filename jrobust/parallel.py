"""Scale-out: the stacked model axis sharded over every device of one or many hosts.

A 1-D device mesh with the axis ``"models"`` spans all devices (of every process in a multi-host
run, see ``jrobust.distributed``). Every per-lane argument of a stack (hyperparameters, model
hashes, instance indices, training subsets; inside the trainer: parameters, optimizer state and
keys, which are derived per lane) is split over that axis; the population is replicated, once per
race. The stack trainer runs under ``jax.shard_map``: each device trains its own slice of
instances and nothing is communicated during training; the per-instance losses are gathered to
every host once per stack. Stack sizes are multiples of the device count.

Memory: ``max_stack`` sizes the stack of one compiled call from the free device memory and the
model's per-instance footprint (``instance_bytes``); ``launch_with_retry`` splits a stack that
still runs out of memory and retries the halves, on every host alike.

This module is the public face of three concerns, each in its own private module: the placement,
the memory estimate and the out-of-memory retry.
"""

from jrobust._src.parallel.memory import (
    free_device_bytes,
    instance_bytes,
    max_stack,
    stack_size_for_memory,
)
from jrobust._src.parallel.oom import is_oom, launch_with_retry
from jrobust._src.parallel.placement import MODELS_AXIS, Placement, make_mesh, placement_for

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
