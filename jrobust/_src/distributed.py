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

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

# JAX is imported inside the functions: the command line adds these options to its parser
# without loading JAX.

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

ENV_COORDINATOR = "JROBUST_COORDINATOR"
ENV_NUM_PROCESSES = "JROBUST_NUM_PROCESSES"
ENV_PROCESS_ID = "JROBUST_PROCESS_ID"
ENV_LOCAL_DEVICE_IDS = "JROBUST_LOCAL_DEVICE_IDS"


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"the environment variable {name}={value!r} must be an integer") from None


def _env_ids(name: str) -> list[int] | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{name}={value!r} must be comma-separated device ids, e.g. 0,1") from None


def _enable_cpu_collectives() -> None:
    """Select gloo for cross-process collectives of CPU devices (affects the CPU backend only)."""
    import jax

    try:
        current = jax.config.jax_cpu_collectives_implementation
    except AttributeError:  # JAX before the option existed
        try:
            jax.config.update("jax_cpu_enable_gloo_collectives", True)
        except Exception:  # noqa: BLE001 - nothing more to do on such a version
            pass
        return
    if current in (None, "", "none"):  # keep a user's choice such as "mpi"
        jax.config.update("jax_cpu_collectives_implementation", "gloo")


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: int | Sequence[int] | None = None,
    **kwargs,
) -> bool:
    """Start JAX's distributed runtime for a multi-host race; call it before any other JAX call.

    Args:
      coordinator_address: ``host:port`` of process 0 (every process passes the same value).
      num_processes: how many processes take part.
      process_id: this process's number, ``0 .. num_processes - 1``.
      local_device_ids: restrict this process to these local devices (e.g. one GPU per process).
      **kwargs: passed on to ``jax.distributed.initialize`` (e.g. ``initialization_timeout``).

    Unset arguments are read from ``JROBUST_COORDINATOR``, ``JROBUST_NUM_PROCESSES``,
    ``JROBUST_PROCESS_ID`` and ``JROBUST_LOCAL_DEVICE_IDS``; when none is set either, JAX detects
    the cluster (Slurm, Open MPI, ``JAX_COORDINATOR_ADDRESS``, TPU pods, ...).

    Returns:
      True when the distributed runtime is running (also when it already was), False for a plain
      single-process run (nothing configured or detected).

    Example (two processes on one machine, each with its own ``process_id``)::

        jrobust.distributed.initialize("127.0.0.1:12345", num_processes=2, process_id=0)
        result = jrobust.race(space, population)   # the same call on every process
    """
    import jax

    if jax.distributed.is_initialized():
        return True
    coordinator_address = coordinator_address or os.environ.get(ENV_COORDINATOR) or None
    num_processes = num_processes if num_processes is not None else _env_int(ENV_NUM_PROCESSES)
    process_id = process_id if process_id is not None else _env_int(ENV_PROCESS_ID)
    if local_device_ids is None:
        local_device_ids = _env_ids(ENV_LOCAL_DEVICE_IDS)
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"num_processes must be at least 1, got {num_processes}")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"process_id must be in 0..{num_processes - 1}, got {process_id}")
    if num_processes == 1 and coordinator_address is None:
        return False  # explicitly a single process: nothing to start
    _enable_cpu_collectives()
    explicit = any(v is not None for v in (coordinator_address, num_processes, process_id))
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator_address,
            num_processes=num_processes,
            process_id=process_id,
            local_device_ids=local_device_ids,
            **kwargs,
        )
    except RuntimeError as err:  # JAX was already in use: too late to start the runtime
        if explicit or _cluster_launched():
            raise RuntimeError(
                f"{err} Call jrobust.distributed.initialize() first thing in the program."
            ) from None
        return False  # nothing asks for several processes: a single process
    except ValueError as err:
        if explicit:
            raise ValueError(
                f"cannot start the multi-host run: {err} Give --coordinator HOST:PORT, "
                f"--num-processes and --process-id (or {ENV_COORDINATOR}, {ENV_NUM_PROCESSES}, "
                f"{ENV_PROCESS_ID}), or start the processes with a launcher JAX detects "
                "(srun, mpirun)"
            ) from None
        return False  # no cluster detected: a single process
    return True


def _cluster_launched() -> bool:
    """Whether a launcher started several processes (the variables JAX's detection reads)."""
    env = os.environ
    counts = (env.get("SLURM_NTASKS"), env.get("OMPI_COMM_WORLD_SIZE"), env.get("PMI_SIZE"))
    several = any(c is not None and c.strip().isdigit() and int(c) > 1 for c in counts)
    return several or bool(env.get("JAX_COORDINATOR_ADDRESS"))


def add_cli_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Add ``--coordinator``, ``--num-processes`` and ``--process-id`` to a command-line parser."""
    group = parser.add_argument_group(
        "multi-host",
        "run one race over the devices of several processes/hosts (every process runs the same "
        f"command; defaults: ${ENV_COORDINATOR}, ${ENV_NUM_PROCESSES}, ${ENV_PROCESS_ID}, or the "
        "cluster as detected by JAX, e.g. Slurm's srun)",
    )
    group.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        default=None,
        help="address of process 0's coordinator service, the same on every process",
    )
    group.add_argument(
        "--num-processes",
        type=int,
        metavar="N",
        default=None,
        help="number of processes taking part",
    )
    group.add_argument(
        "--process-id",
        type=int,
        metavar="I",
        default=None,
        help="this process's number, 0 .. N-1 (process 0 writes the results)",
    )
    return group


def initialize_from_args(args: argparse.Namespace) -> bool:
    """``initialize`` with the values parsed from ``add_cli_arguments``'s flags."""
    return initialize(
        getattr(args, "coordinator", None),
        getattr(args, "num_processes", None),
        getattr(args, "process_id", None),
    )


def process_index() -> int:
    import jax

    return jax.process_index()


def process_count() -> int:
    import jax

    return jax.process_count()


def is_main_process() -> bool:
    """True on process 0, the only one that writes results, checkpoints and reports."""
    import jax

    return jax.process_index() == 0
