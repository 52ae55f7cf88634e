"""Atomic file writes: a temporary file beside the target, flushed to disk, then renamed.

A failure at any point (a full disk, a kill) leaves the previous version of the file intact and
no temporary file behind (a kill, which runs no clean-up, leaves at most a ``*.tmp<pid>`` file
that the next write of the same target removes once process ``<pid>`` has ended; a running
writer's temporary file is left alone).

Nothing planted in a folder redirects a write: the temporary file is created anew
(``O_EXCL``) without following a symbolic link (``O_NOFOLLOW``), and the rename replaces a link
at the target's name instead of writing through it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["write_atomic", "write_text_atomic"]

_sync = os.fsync  # one name the fault tests can make fail like a full disk

_WRITER = re.compile(r"\.tmp(\d+)")


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would signal it there; a live writer's open file
        return False  # cannot be removed on Windows anyway (the unlink fails, and is ignored)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, under another user
        return True
    return True


def _remove_stale(path: Path) -> None:
    """Remove the temporary files of ``path`` left by writers that no longer run (and this
    process's own, which no write of it is using now)."""
    for stale in glob.glob(glob.escape(str(path)) + ".tmp*"):
        match = _WRITER.match(stale[len(str(path)) :])
        if match is None:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or not _pid_alive(pid):
            with contextlib.suppress(OSError):
                Path(stale).unlink(missing_ok=True)  # a link is removed, never followed


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Write ``path`` through ``write(file)`` atomically; returns the path."""
    path = Path(path)
    _remove_stale(path)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)  # less the umask, as open() gives
    try:
        with open(fd, "wb") as fh:
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
