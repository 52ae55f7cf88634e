"""Agreement between the processes of a multi-host run: every host takes the same decision.

A race is deterministic on every host only if the few facts a host learns alone (its free memory,
an out-of-memory error) are shared before they decide anything; these are small all-gathers.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils

__all__ = ["all_processes", "any_process", "min_over_processes"]


def all_processes(values: np.ndarray) -> np.ndarray:
    """``values`` of every process stacked on a new leading axis (one row per process)."""
    values = np.asarray(values)
    if jax.process_count() == 1:
        return values[None]
    return np.asarray(multihost_utils.process_allgather(values))


def any_process(flag: bool) -> bool:
    """True when ``flag`` is true on any process (every process gets the same answer)."""
    return bool(all_processes(np.asarray([int(flag)], np.int32)).max() > 0)


def min_over_processes(value: int) -> int:
    return int(all_processes(np.asarray([value], np.int64)).min())
