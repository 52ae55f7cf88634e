"""One run per folder: an advisory lock file that names the process using a run folder.

Two races writing one folder lose one of them silently (each checkpoint and table replaces the
other's), and a ``--resume`` of a run that is still running trains its rounds twice. So a run
folder has an owner: the first thing written into it is ``run.lock``, which says who owns it
(process id, host, start time, command) and which the owner holds an ``fcntl.flock`` on for as
long as it runs. The system releases a ``flock`` when its process ends, however it ends (a kill
included), so a held lock always means a live owner on this host.

A lock file nobody holds is *stale*: its record is checked by process id and host. A record of
this host whose process no longer runs is taken over, with a one-line message; a record of
another host is reported and never taken over (a ``flock`` may not reach across the hosts of a
shared file system, and this host cannot see the other's processes): the message says to delete
the file if that run has ended. The owner deletes the file when it ends (success, error, Ctrl-C,
SIGTERM); only a kill leaves it behind, stale.

The lock is taken once per folder and thread: the command holds it for the whole run and the
race it starts in the same thread takes it again (a count); a second thread or process is
refused with ``FolderInUse``.

The lock file is the one file of a run folder not written by ``jrobust._src.atomic``: a lock must
stay one file (one inode) while it is held, where an atomic write replaces the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import errno
import json
import os
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # no flock on this system: the record's process id and host decide alone
    fcntl = None

__all__ = [
    "LOCK_FILE",
    "FolderInUse",
    "Owner",
    "acquire",
    "check_free",
    "check_writable",
    "hold",
    "pid_alive",
    "release",
]

LOCK_FILE = "run.lock"

# Folders this process holds: real path -> the holding thread, its count, the lock's descriptor.
_held: dict[str, _Held] = {}
_guard = threading.Lock()


class FolderInUse(RuntimeError):
    """The run folder is in use by another live process or thread, or locked by a process of
    another host (which this host cannot check).

    Attributes:
      folder: the folder; owner: the ``Owner`` its lock names (``None`` when unknown).
    """

    def __init__(self, message: str, folder: Path, owner: Owner | None) -> None:
        super().__init__(message)
        self.folder = folder
        self.owner = owner


@dataclasses.dataclass(frozen=True)
class Owner:
    """Who holds a run folder: what ``run.lock`` records."""

    pid: int
    host: str
    started: str  # local time, ISO 8601 to the second
    command: str

    def describe(self) -> str:
        """``pid 123 on host since 2026-01-02T03:04:05 (jrobust run ...)``."""
        what = f" ({self.command})" if self.command else ""
        return f"pid {self.pid} on {self.host} since {self.started}{what}"


@dataclasses.dataclass
class _Held:
    thread: int
    count: int
    fd: int
    created: list[Path]  # the folders acquire created, innermost first


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (one that cannot be signalled counts)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would signal it there: count it as running
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    except OSError:
        return False
    return True


def _host() -> str:
    return socket.gethostname()


def _read(fd: int) -> Owner | None:
    try:
        raw = os.pread(fd, 1 << 16, 0)
        record = json.loads(raw.decode("utf-8"))
        return Owner(
            int(record["pid"]), str(record["host"]), str(record["started"]), str(record["command"])
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # empty (being written) or not a record


def _busy(folder: Path, owner: Owner | None) -> FolderInUse:
    who = owner.describe() if owner else "another process (its lock record is being written)"
    return FolderInUse(
        f"the run folder {folder} is in use by {who}; wait for it to end, or use another folder",
        folder,
        owner,
    )


def _busy_thread(folder: Path) -> FolderInUse:
    return FolderInUse(
        f"the run folder {folder} is in use by another thread of this process (pid "
        f"{os.getpid()}); two races cannot write one folder at once: use another folder",
        folder,
        None,
    )


def _foreign(folder: Path, owner: Owner) -> FolderInUse:
    return FolderInUse(
        f"the run folder {folder} is locked by {owner.describe()}, another host, whose processes "
        f"this host cannot check; if that run has ended, delete {folder / LOCK_FILE}",
        folder,
        owner,
    )


def _open(path: Path, flags: int) -> int:
    """Open the lock file without following a symbolic link."""
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o644)


_SHARED = fcntl.LOCK_SH if fcntl is not None else 0
_EXCLUSIVE = fcntl.LOCK_EX if fcntl is not None else 0


def _flock(fd: int, kind: int) -> bool | None:
    """Try to lock ``fd``: True when locked, False when another holds it, None when the file
    system has no ``flock`` (then the record's process id and host decide alone)."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as err:
        if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return None
        raise
    return True


def _in_this_process(folder: Path) -> _Held | None:
    with _guard:
        held = _held.get(os.path.realpath(folder))
    return held


def check_writable(folder: str | os.PathLike, what: str | None = None) -> None:
    """A ``ValueError`` when ``folder`` cannot be created or written: a file in its place or
    above it, or a folder this user cannot write (the nearest existing one is asked).

    Args:
      folder: the run folder.
      what: how the message names it (default: ``the run folder <folder>``).
    """
    folder = Path(folder)
    name = what or f"the run folder {folder}"
    probe = folder
    while not probe.exists() and probe != probe.parent:
        if probe.is_symlink():  # a dangling link: creating the folder would fail
            raise ValueError(f"{name} cannot be created: {probe} is a broken symbolic link")
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"{name} cannot be created: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        where = "it" if probe == folder else f"{probe}"
        raise ValueError(
            f"{name} cannot be written: {where} is not writable by this user; choose a folder "
            "you can write"
        )


def check_free(folder: str | os.PathLike) -> None:
    """Raise ``FolderInUse`` when ``folder`` is in use by a live process (or another thread of
    this one) or locked from another host; writes nothing (a stale lock is left for ``acquire``
    to take over)."""
    folder = Path(folder)
    held = _in_this_process(folder)
    if held is not None:
        if held.thread != threading.get_ident():
            raise _busy_thread(folder)
        return
    path = folder / LOCK_FILE
    if not path.is_file() or path.is_symlink():
        return
    try:
        fd = _open(path, os.O_RDONLY)
    except OSError:
        return  # gone meanwhile, or unreadable: acquire decides
    try:
        locked = _flock(fd, _SHARED)
        owner = _read(fd)
        if locked is False:
            raise _busy(folder, owner)
        if owner is not None and owner.host != _host():
            raise _foreign(folder, owner)
        if locked is None and owner is not None and _alive_elsewhere(owner):
            raise _busy(folder, owner)
    finally:
        os.close(fd)  # closing drops the shared lock


def _alive_elsewhere(owner: Owner) -> bool:
    """The record names a live process of this host other than this one."""
    return owner.host == _host() and owner.pid != os.getpid() and pid_alive(owner.pid)


def _command_line() -> str:
    return " ".join(os.path.basename(a) if k == 0 else a for k, a in enumerate(sys.argv))


def acquire(
    folder: str | os.PathLike,
    command: str | None = None,
    notify: Callable[[str], None] | None = None,
) -> Path:
    """Take the lock of ``folder`` (created if needed) for this thread; returns the lock file.

    Release it with ``release`` (or use ``hold``). Taking it again in the same thread only
    counts; a stale lock of this host is taken over with a message to ``notify`` (default: a
    ``RuntimeWarning``).

    Raises:
      FolderInUse: another live process or thread holds the folder, or a process of another
        host locked it.
      ValueError: the folder cannot be created or written (``check_writable``).
    """
    folder = Path(folder)
    key = os.path.realpath(folder)
    with _guard:
        held = _held.get(key)
        if held is not None and held.thread == threading.get_ident():
            held.count += 1
            return folder / LOCK_FILE
    if held is not None:
        raise _busy_thread(folder)
    check_writable(folder)
    created = _missing(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"the run folder {folder} cannot be created: {err.strerror}") from None
    try:
        fd = _take(folder, notify)
    except BaseException:
        _remove_if_empty(created)
        raise
    with _guard:
        _held[os.path.realpath(folder)] = _Held(threading.get_ident(), 1, fd, created)
    record = {
        "pid": os.getpid(),
        "host": _host(),
        "started": _dt.datetime.now().isoformat(timespec="seconds"),
        "command": command if command is not None else _command_line(),
    }
    data = (json.dumps(record) + "\n").encode("utf-8")
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
    except BaseException:
        release(folder)
        raise
    return folder / LOCK_FILE


def _take(folder: Path, notify: Callable[[str], None] | None) -> int:
    """Open and lock ``folder/run.lock``; returns its descriptor (locked, record not written)."""
    path = folder / LOCK_FILE
    deadline = time.monotonic() + 2.0
    while True:
        try:
            fd = _open(path, os.O_RDWR | os.O_CREAT)
        except PermissionError:
            raise ValueError(
                f"the run folder {folder} cannot be written (creating {LOCK_FILE}: permission "
                "denied); choose a folder you can write"
            ) from None
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise ValueError(
                    f"{path} is a symbolic link, which jrobust does not follow; delete it"
                ) from None
            raise
        try:
            locked = _flock(fd, _EXCLUSIVE)
            owner = _read(fd)
            if locked is False:
                # a reader's brief shared lock, or a holder that is just starting or ending:
                # try again for a moment before calling the folder busy
                if time.monotonic() < deadline and (owner is None or not _alive(owner)):
                    os.close(fd)
                    time.sleep(0.05)
                    continue
                raise _busy(folder, owner)
            if not _same_file(path, fd):  # the holder deleted it as we opened it: again
                os.close(fd)
                continue
            if owner is not None:
                if owner.host != _host():
                    raise _foreign(folder, owner)
                if locked is None and _alive_elsewhere(owner):
                    raise _busy(folder, owner)
                _say(
                    notify,
                    f"{path} was left by pid {owner.pid} (since {owner.started}), which no longer "
                    "runs; taking it over",
                )
            return fd
        except BaseException:
            os.close(fd)
            raise


def _alive(owner: Owner) -> bool:
    return owner.host != _host() or pid_alive(owner.pid)


def _same_file(path: Path, fd: int) -> bool:
    try:
        return os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _say(notify: Callable[[str], None] | None, text: str) -> None:
    if notify is not None:
        notify(text)
    else:
        warnings.warn(text, RuntimeWarning, stacklevel=4)


def release(folder: str | os.PathLike) -> None:
    """Give back one ``acquire`` of ``folder`` by this thread; the last one deletes the lock
    file (and the folder, if ``acquire`` created it and nothing else was written there)."""
    folder = Path(folder)
    key = os.path.realpath(folder)
    with _guard:
        held = _held.get(key)
        if held is None or held.thread != threading.get_ident():
            return
        held.count -= 1
        if held.count > 0:
            return
        del _held[key]
    try:
        path = folder / LOCK_FILE
        if _same_file(path, held.fd):
            path.unlink(missing_ok=True)
    finally:
        os.close(held.fd)  # drops the flock
    _remove_if_empty(held.created)


def _missing(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist, innermost first."""
    out = []
    while not folder.exists() and folder != folder.parent:
        out.append(folder)
        folder = folder.parent
    return out


def _remove_if_empty(created: list[Path]) -> None:
    """Remove the folders ``acquire`` created, innermost first, while they are empty (a folder
    that bad input refused leaves nothing behind)."""
    for folder in created:
        try:
            folder.rmdir()
        except OSError:
            return


@contextlib.contextmanager
def hold(
    folder: str | os.PathLike,
    command: str | None = None,
    notify: Callable[[str], None] | None = None,
) -> Iterator[Path]:
    """``acquire`` for the block; released however the block ends."""
    path = acquire(folder, command, notify)
    try:
        yield path
    finally:
        release(folder)
