"""Out of device memory: a stack that does not fit is split in halves and each half retried.

The memory estimate (``jrobust._src.parallel.memory``) errs on the large side, but a device shared with other
work can still run out. ``launch_with_retry`` waits for each stack it dispatches, so an error
raised while it runs is caught here; in a multi-host run the hosts agree after every attempt (one
small all-gather), so an error on any host makes every host split the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jrobust._src.parallel.hosts import any_process
from jrobust._src.train import bucket_size_for

__all__ = ["is_oom", "launch_with_retry"]


def is_oom(err: BaseException) -> bool:
    """Whether ``err`` is an out-of-memory error of a device."""
    text = str(err)
    return "RESOURCE_EXHAUSTED" in text or "Out of memory" in text or "out of memory" in text


def launch_with_retry(
    launch: Callable[[np.ndarray, int], Any], n: int, bucket: int, multiple: int = 1
) -> list[tuple[np.ndarray, Any]]:
    """Dispatch ``n`` lanes as one stack of ``bucket``; on an out-of-memory error split them in
    halves and retry each half in a stack of at most half the size.

    Args:
      launch: ``launch(lane_indices, stack_size) -> Pending`` dispatches those of the ``n``
        lanes in a stack of that size (``jrobust._src.train.launch_stack``).
      n: the lanes to train; bucket: the first stack's size; multiple: the device count (stack
        sizes stay multiples of it).

    Returns:
      ``[(lane_indices, Pending), ...]``: which lanes each part trained.

    Raises:
      RuntimeError: a single lane (or a stack of one lane per device) does not fit.
    """

    def attempt(lanes: np.ndarray, size: int) -> list[tuple[np.ndarray, Any]]:
        error, part = None, None
        try:
            part = launch(lanes, size)
            jax.block_until_ready(part.result)
        except Exception as err:  # noqa: BLE001 - only memory errors are retried
            if not is_oom(err):
                raise
            error = err
        if not any_process(error is not None):
            return [(lanes, part)]
        part = None  # another host (or this one) ran out of memory: every host splits alike
        if len(lanes) == 1 or size <= multiple:
            raise RuntimeError(
                f"out of device memory with a stack of {size} instances ({len(lanes)} real, "
                f"{multiple} device(s)); a smaller stack cannot help: use a smaller model, "
                "batch_size or population, or more devices"
                + (f" ({error})" if error is not None else " (on another host)")
            ) from error
        half_size = (size + 1) // 2
        sub_cap = (half_size + multiple - 1) // multiple * multiple
        halves = (lanes[: len(lanes) // 2], lanes[len(lanes) // 2 :])
        return [
            piece
            for h in halves
            for piece in attempt(h, min(bucket_size_for(len(h), multiple), sub_cap))
        ]

    return attempt(np.arange(n), bucket)
