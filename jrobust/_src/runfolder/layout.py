"""The files of a run folder, and how each is written (atomically, data only).

A run folder holds::

    config.toml        the resolved configuration (data, race settings, space): enough to rerun
                       with ``jrobust run --space config.toml``
    checkpoint.npz     the race state after the last round (``jrobust run --resume`` continues
                       it); plain arrays and JSON, read without pickle
    result.json        winner, winners, trainings, timing, settings
    ledger.parquet     one row per trained instance (model_id, instance, loss, status, round, ...)
    history.parquet    one row per round (survivors, trained, eliminated, seconds, ...)
    path.parquet       one row per (round, model racing in it): the statistic, rank, alive
    models.parquet     the space: model_id, name, cohort and the varied fields
    iterations.parquet a search's iterations (``jrobust.search``; absent for a race): one row
                       per (iteration, parameter): the candidates sampled, the elites kept, the
                       sampling model's centre and width, whether it restarted
    programs.parquet   one row per compiled program: its models, variants, merged, padded-work
                       waste, stack sizes, lanes trained, compile seconds
    summary.md         the summary in Markdown
    report.html        a self-contained report (tables and figures embedded; no network needed)
    distributions.png  instance-loss distributions of the survivors
    path.png           the elimination path (statistic of each model per round)
    iterations.png     a search's sampled values per parameter against the iteration (elites
                       circled, the winner in red)
    sample_size.png    robustness vs training-sample size (when a study provides
                       ``sample_size.parquet``)
    run.lock           only while a run or race writes the folder: its owner (process id,
                       host, start time, command), locked; removed when it ends
                       (``jrobust._src.lock``)

Nothing in a run folder is executable or pickled: a folder received from someone else can be
read safely.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jrobust._src.atomic import write_atomic, write_text_atomic
from jrobust._src.race.checkpoint import CHECKPOINT_FILE, LEGACY_CHECKPOINT_FILE
from jrobust._src.space.files import to_toml

__all__ = [
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "FIGURES",
    "FIGURE_MODELS",
    "ITERATIONS_TABLE",
    "RESULT_FILE",
    "PROGRAMS_TABLE",
    "SAMPLE_SIZE_TABLE",
    "TABLES",
    "is_run_folder",
    "read_config",
    "write_config",
    "write_table",
]

CONFIG_FILE = "config.toml"
RESULT_FILE = "result.json"
TABLES = ("ledger", "history", "path", "models")
FIGURES = {
    "path": "path.png",
    "iterations": "iterations.png",
    "distributions": "distributions.png",
    "sample_size": "sample_size.png",
    "transforms": "transforms.png",
}
#: How many models the figures that show a subset draw (the best first), and the report says
#: so in their captions ("12 of 16 models").
FIGURE_MODELS = {"distributions": 12, "transforms": 6}
SAMPLE_SIZE_TABLE = "sample_size"
#: A search's iterations (``SelectionResult.iterations``), written only when there are some.
ITERATIONS_TABLE = "iterations"
PROGRAMS_TABLE = "programs"


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns of mixed types (e.g. ``None`` and ints) become strings, lists stay lists."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype != object:
            continue
        values = out[col].tolist()
        if all(isinstance(v, list | tuple | np.ndarray) for v in values):
            out[col] = [
                [int(x) if isinstance(x, int | np.integer) else x for x in v] for v in values
            ]
            continue
        kinds = {type(v) for v in values if v is not None}
        if len(kinds) > 1 or any(v is None for v in values) and kinds - {str}:
            out[col] = [str(v) for v in values]
    return out


def write_table(
    frame: pd.DataFrame, folder: str | os.PathLike, name: str, csv: bool = False
) -> Path:
    """Write ``name.parquet`` (and ``name.csv`` with ``csv``) atomically."""
    folder = Path(folder)
    safe = _parquet_safe(frame)
    path = write_atomic(folder / f"{name}.parquet", lambda fh: safe.to_parquet(fh, index=False))
    if csv:
        write_text_atomic(folder / f"{name}.csv", safe.to_csv(index=False))
    return path


def is_run_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a jrobust run (its ``config.toml``, results or checkpoint)."""
    f = Path(folder)
    return any(
        (f / name).is_file()
        for name in (CONFIG_FILE, RESULT_FILE, CHECKPOINT_FILE, LEGACY_CHECKPOINT_FILE)
    )


def write_config(
    folder: str | os.PathLike, config: Mapping[str, Any], header: str | None = None
) -> Path:
    """Write the resolved configuration as ``config.toml`` (atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(folder / CONFIG_FILE, to_toml(config, header=header))


def read_config(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The ``config.toml`` of a run folder as a dict (``None`` when there is none).

    Raises:
      ValueError: when the file is not valid TOML (the message names the file).
    """
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: malformed TOML: {err}") from None
