"""Ctrl-C while the ``jrobust`` command is still starting (importing JAX takes seconds).

A ``KeyboardInterrupt`` raised inside an extension module's import turns into an ``ImportError``
and a traceback with exit status 1. When this process is the ``jrobust`` command (the console
script or ``python -m jrobust``), SIGINT and SIGTERM end it at once, with one line and exit
status 130 (143), until the command installs its own handling (``jrobust._src.signals``). Nothing is
written before that, so nothing is lost. Imported as a library, jrobust changes no handler.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path


def _is_command() -> bool:
    argv = getattr(sys, "orig_argv", None) or sys.argv
    script = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return script in ("jrobust", "jrobust.exe") or list(argv[1:3]) == ["-m", "jrobust"]


def _stop_now(signum: int, frame) -> None:
    os.write(2, b"jrobust: interrupted\n")
    os._exit(128 + signum)


if _is_command() and threading.current_thread() is threading.main_thread():
    for _signal in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
        if _signal is not None:
            signal.signal(_signal, _stop_now)
