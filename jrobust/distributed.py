"""Multi-host start-up: ``jax.distributed`` from command-line flags, the environment or the cluster.

Every process of a multi-host race runs the same program: it calls ``initialize(...)`` before any
other JAX call, then ``jrobust.race(...)`` as usual. The race's mesh then spans the devices of every
process (``jax.devices()``), each stack is sharded over all of them, the losses are gathered to
every process once per stack, and every process takes the same (deterministic) decisions; only
process 0 writes checkpoints and results (``is_main_process()``).

Where the settings come from, first match wins:

1. the arguments (``--coordinator``, ``--num-processes``, ``--process-id`` on the command line,
   see ``add_cli_arguments``);
2. the environment: ``JROBUST_COORDINATOR`` (``host:port`` of process 0), ``JROBUST_NUM_PROCESSES``,
   ``JROBUST_PROCESS_ID`` (and ``JROBUST_LOCAL_DEVICE_IDS``, comma-separated);
3. JAX's own detection, ``jax.distributed.initialize()`` without arguments:
   ``JAX_COORDINATOR_ADDRESS``, Slurm (``srun``), Open MPI (``mpirun``), Cloud TPU, Kubernetes,
   where JAX supports them.

When none applies, the run is a single process and ``initialize`` does nothing.

On CPU, processes exchange data through JAX's gloo collectives
(``jax_cpu_collectives_implementation = "gloo"``, the default since JAX 0.5); this lets the
multi-host path be tested with several processes on one machine.
"""

from jrobust._src.distributed import (
    ENV_COORDINATOR,
    ENV_LOCAL_DEVICE_IDS,
    ENV_NUM_PROCESSES,
    ENV_PROCESS_ID,
    add_cli_arguments,
    initialize,
    initialize_from_args,
    is_main_process,
    process_count,
    process_index,
)

__all__ = [
    "initialize",
    "add_cli_arguments",
    "initialize_from_args",
    "is_main_process",
    "process_index",
    "process_count",
    "ENV_COORDINATOR",
    "ENV_NUM_PROCESSES",
    "ENV_PROCESS_ID",
    "ENV_LOCAL_DEVICE_IDS",
]
