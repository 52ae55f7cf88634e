"""Ctrl-C, SIGTERM and SIGHUP as a flag that the race checks at safe points.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when SIGINT arrives,
which can be inside JAX's garbage-collection callback, where the exception is printed and
swallowed ("Exception ignored in: _xla_gc_callback"): the interrupt is lost. Inside
``deferred_signals()`` the first SIGINT, SIGTERM or SIGHUP only sets a flag; the race looks at it
between stacks and rounds (``check()``), after its checkpoint is written, and raises
``Interrupted``. A second signal stops the process at once through the system's default action (exit status 130 for
SIGINT), which leaves every file as its last atomic write made it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

__all__ = ["Interrupted", "check", "deferred_signals", "requested"]

# SIGHUP: the terminal went away (a closed window, a dropped ssh session); stop as for SIGTERM
_SIGNALS = tuple(
    s
    for s in (signal.SIGINT, getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None))
    if s is not None
)
_received: list[int] = []
_depth = 0


class Interrupted(KeyboardInterrupt):
    """The race stopped at a signal; its checkpoint holds every round completed before it.

    Attributes:
      signum: the signal (``signal.SIGINT``, ``signal.SIGTERM`` or ``signal.SIGHUP``).
      exit_code: the conventional exit status, ``128 + signum`` (130 for Ctrl-C, 143 for
        SIGTERM, 129 for SIGHUP).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = int(signum)
        self.exit_code = 128 + self.signum


def _handler(signum: int, frame) -> None:
    if _received:  # the second signal: stop now, the default way
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    _received.append(signum)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Within this block SIGINT/SIGTERM/SIGHUP set a flag instead of raising (main thread only;
    nested blocks share the outer one's handler). The flag is cleared on leaving."""
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    if _depth == 0:
        _received.clear()
        previous = {s: signal.signal(s, _handler) for s in _SIGNALS}
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            for s, old in previous.items():
                signal.signal(s, old)
            _received.clear()


def requested() -> bool:
    """Whether a signal arrived in the current ``deferred_signals`` block."""
    return bool(_received)


def check() -> None:
    """Raise ``Interrupted`` if a signal arrived (call it where stopping loses nothing)."""
    if _received:
        raise Interrupted(_received[0])
