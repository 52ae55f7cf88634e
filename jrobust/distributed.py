"""Multi-host start-up: ``jax.distributed`` from command-line flags, the environment or the cluster.

This module is the public face: it re-exports names defined under ``jrobust._src``.
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
