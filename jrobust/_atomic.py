"""Atomic file writes: a temporary file beside the target, flushed to disk, then renamed.

A failure at any point (a full disk, a kill) leaves the previous version of the file intact and
no temporary file behind (a kill, which runs no clean-up, leaves at most a ``*.tmp<pid>`` file
that the next write of the same target removes).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["write_atomic", "write_text_atomic"]

_sync = os.fsync  # one name the fault tests can make fail like a full disk


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Write ``path`` through ``write(file)`` atomically; returns the path."""
    path = Path(path)
    for stale in glob.glob(glob.escape(str(path)) + ".tmp*"):  # left by a killed writer
        Path(stale).unlink(missing_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            _sync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write a UTF-8 text file atomically."""
    return write_atomic(path, lambda fh: fh.write(text.encode("utf-8")))
