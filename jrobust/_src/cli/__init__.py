"""The ``jrobust`` command: run a robust model selection, rebuild its report, benchmark the trainer.

``jrobust run`` races the models of a search space (Boldyrev, Ratnikov, Shevelev, IEEE Access 2025:
train instances of every model, eliminate models whose instance losses are poor or spread
widely) and saves a run folder (``jrobust._src.runfolder``); ``jrobust report`` rebuilds a folder's
summary and figures; ``jrobust bench`` measures instance-steps per second; ``jrobust space`` lists
the models of a space without training anything. One module per command.

Exit statuses: 0 success; 2 bad input (an unknown option value, a malformed space file, an
output folder that holds another run, a missing data folder), checked before anything is
trained; 1 a failure while running (a full disk, a damaged file, a race whose every instance
failed); 130 (143) interrupted by Ctrl-C (SIGTERM). Each gives one line on stderr; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from jrobust._src.cli import bench, report, run, space
from jrobust._src.cli.options import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, Help, Parser, UsageError
from jrobust._src.signals import Interrupted, deferred_signals
from jrobust._version import __version__

__all__ = ["main", "build_parser", "UsageError", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE"]

_MAIN_EPILOG = """\
examples:
  jrobust run                                  the main job: a robust selection on the synthetic
                                               calorimeter with the built-in space (a few minutes)
  jrobust space --example > space.toml         a complete commented space file to edit
  jrobust space space.toml                     list the models of a space, train nothing
  jrobust run --space space.toml --data calo-b --out runs/mine
  jrobust run --resume runs/mine               continue a stopped run where it stopped
  jrobust report runs/mine                     rebuild summary.md, report.html and the figures
  jrobust bench                                instance-steps/s of paper model 1 vs stack size

Every command takes --help. Bad input gives one line and exit status 2, a failure while running
exit status 1, Ctrl-C 130 (--debug: the traceback).
"""


def build_parser() -> Parser:
    """The ``jrobust`` argument parser (subcommands ``run``, ``report``, ``bench``, ``space``)."""
    parser = Parser(
        prog="jrobust",
        formatter_class=Help,
        epilog=_MAIN_EPILOG,
        description="Robust model selection on JAX: train many instances of every candidate model "
        "as one compiled computation, and race the models until the robust winner is left.",
    )
    parser.add_argument("--version", action="version", version=f"jrobust {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in (run, report, bench, space):
        module.add_parser(sub)
    return parser


def _failure_message(err: BaseException, folder: Path | None = None) -> str:
    """One line for a failure while running, with what to do about it (``folder``: the run
    folder of ``jrobust run``, when it is known)."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        where = f" writing {err.filename}" if err.filename else ""
        text = f"no space left on the device{where}; free some space and "
        if folder is not None and (folder / "config.toml").is_file():
            checkpoint = folder / "checkpoint.npz"
            kept = (
                f"its last checkpoint {checkpoint} is intact"
                if checkpoint.is_file()
                else "no round was saved yet, so it starts from round 1"
            )
            return text + f"continue with jrobust run --resume {folder} ({kept})"
        if folder is not None:
            return text + "run the same command again (no round was saved)"
        return text + "run the same command again"
    if isinstance(err, KeyError) and err.args:
        return f"internal error: missing {err.args[0]!r}"
    text = str(err) or type(err).__name__
    return text if isinstance(err, OSError | RuntimeError) else f"{type(err).__name__}: {text}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``jrobust`` command with ``argv`` (default: ``sys.argv[1:]``).

    Returns:
      The exit status: 0 on success, 2 for bad input, 1 for a failure while running, 130
      (143) when interrupted by Ctrl-C (SIGTERM).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    args = None
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit_:  # --help and --version
            return int(exit_.code or 0)
        debug = debug or bool(getattr(args, "debug", False))
        if not getattr(args, "command", None):
            parser.print_help()
            return EXIT_USAGE
        if args.command != "run":
            return args.func(args, argv)
        # Ctrl-C becomes a flag the run checks at safe points; what the run holds until it
        # ends (its folder's lock) is given back on every way out
        with deferred_signals(), contextlib.ExitStack() as args.held:
            return args.func(args, argv)
    except Interrupted as err:
        folder = getattr(err, "folder", None)
        then = f"; continue with: jrobust run --resume {folder}" if folder else ""
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            print(f"jrobust: interrupted{then}", file=sys.stderr, flush=True)
        return err.exit_code
    except KeyboardInterrupt:
        if debug:
            raise
        print("jrobust: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `jrobust space | head`: the reader left, nothing to report
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_OK
    except UsageError as err:
        if debug:
            raise
        print(f"jrobust: error: {_one_line(str(err))}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as err:  # noqa: BLE001 - a failure while running: one line, exit 1
        if debug:
            raise
        folder = getattr(args, "run_folder", None)
        print(
            f"jrobust: error: {_one_line(_failure_message(err, folder))} (--debug shows the "
            "traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


def _one_line(text: str) -> str:
    return " ".join(text.split())
