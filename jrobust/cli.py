"""The ``jrobust`` command: run a robust model selection, rebuild its report, benchmark the trainer.

``jrobust run`` races the models of a search space (Boldyrev, Ratnikov, Shevelev, IEEE Access 2025:
train instances of every model, eliminate models whose instance losses are poor or spread
widely) and saves a run folder (``jrobust.runfolder``); ``jrobust report`` rebuilds a folder's
summary and figures; ``jrobust bench`` measures instance-steps per second; ``jrobust space`` lists
the models of a space without training anything. One module per command.

Exit statuses: 0 success; 2 bad input (an unknown option value, a malformed space file, an
output folder that holds another run, a missing data folder), checked before anything is
trained; 1 a failure while running (a full disk, a damaged file, a race whose every instance
failed); 130 (143) interrupted by Ctrl-C (SIGTERM). Each gives one line on stderr; ``--debug``
shows the traceback instead.
"""

from jrobust._src.cli import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    build_parser,
    main,
)

__all__ = [
    "main",
    "build_parser",
    "UsageError",
    "EXIT_OK",
    "EXIT_FAILURE",
    "EXIT_USAGE",
]
