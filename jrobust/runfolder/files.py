"""Saving a race as a run folder, and reading one back (``save_run``, ``load_run``).

``save_run`` writes the tables, figures, summary and report, and ``result.json`` last: a folder
with a ``result.json`` is complete. ``load_run`` reads a complete folder back into a
``SelectionResult``; a folder whose race was stopped before its end is rebuilt from its
checkpoint (``RaceState.to_result``, the same code that ends a race), so ``jrobust report DIR``
can rebuild the summary and figures at any time. Nothing is unpickled.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow

from jrobust._atomic import write_text_atomic
from jrobust._version import __version__
from jrobust.config import ModelConfig
from jrobust.result import SelectionResult, stage_columns
from jrobust.runfolder.layout import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    PROGRAMS_TABLE,
    RESULT_FILE,
    SAMPLE_SIZE_TABLE,
    TABLES,
    read_config,
    write_config,
    write_table,
)
from jrobust.runfolder.report import write_figures, write_report
from jrobust.runfolder.summary import programs_view, write_summary
from jrobust.settings import RaceSettings
from jrobust.space.files import SpaceError, build_space
from jrobust.state import RaceState, refuse_legacy
from jrobust.stats import get_statistic

__all__ = ["RunFolderError", "load_run", "save_run"]

FORMAT_VERSION = 1


class RunFolderError(RuntimeError):
    """A run folder whose files cannot be read (damaged, truncated, not jrobust's)."""


def save_run(
    result: SelectionResult,
    folder: str | os.PathLike,
    config_dict: Mapping[str, Any] | None = None,
    csv: bool = False,
    *,
    info: Mapping[str, Any] | None = None,
    sample_size: pd.DataFrame | None = None,
    figures: bool = True,
) -> Path:
    """Save a race result as a run folder (see ``jrobust.runfolder`` for its files).

    Args:
      result: the ``SelectionResult``.
      folder: the run folder (created if needed).
      config_dict: the resolved configuration, written as ``config.toml`` (``None``: keep the
        folder's ``config.toml`` if any).
      csv: also write the tables as CSV.
      info: extra facts shown in the summary and report (``data``, ``command``, ...), kept in
        ``result.json``.
      sample_size: a sample-size study (``train_size``, ``loss`` [, ``model``] per instance):
        saved as ``sample_size.parquet`` and plotted.
      figures: write the PNG figures (and embed them in the report).

    Returns:
      The folder.

    Example:
      >>> import numpy as np, tempfile, jrobust
      >>> ev = lambda m, i: 1.0 + 0.1 * (m + 1) * np.sin(13.0 * i + m)
      >>> r = jrobust.race(4, evaluator=ev, warmup=3)
      >>> folder = save_run(r, tempfile.mkdtemp())
      >>> load_run(folder).winner_id == r.winner_id
      True
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if config_dict is not None:
        write_config(folder, config_dict)
    for name in TABLES:
        write_table(getattr(result, name), folder, name, csv)
    if sample_size is not None:
        write_table(sample_size, folder, SAMPLE_SIZE_TABLE, csv)
    if result.timing.get("programs"):
        write_table(programs_view(result.timing["programs"]), folder, PROGRAMS_TABLE, csv)
    info = {"created": _dt.datetime.now().isoformat(timespec="seconds"), **dict(info or {})}
    written = write_figures(result, folder, sample_size) if figures else {}
    write_summary(result, folder, info)
    write_report(result, folder, info, figures=written)
    payload = {
        "format": FORMAT_VERSION,
        "jrobust_version": __version__,
        "winner_id": int(result.winner_id),
        "winner_name": str(result.models.set_index("model_id").name.get(result.winner_id, "")),
        "winner_config": result.winner.full_repr() if result.winner is not None else None,
        "winners": [int(w) for w in result.winners],
        "n_trainings": int(result.n_trainings),
        "all_failed": result.all_failed,
        "timing": _jsonable(result.timing),
        "settings": _jsonable(result.settings),
        "dominance": _jsonable(result.dominance),
        "stages": _jsonable(result.stages),
        "info": _jsonable(info),
    }
    write_text_atomic(folder / RESULT_FILE, json.dumps(payload, indent=2) + "\n")
    return folder


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return float(value) if np.isfinite(value) else str(float(value))
    if isinstance(value, np.bool_):
        return bool(value)
    if value is None or isinstance(value, str | int | bool):
        return value
    return repr(value)


def _space_of(config: Mapping[str, Any] | None, n_models: int):
    """The space that ``config.toml`` describes, if it has ``n_models`` models (else ``None``)."""
    if not config or not config.get("space"):
        return None
    try:
        space = build_space(config["space"])
    except (SpaceError, ValueError, TypeError):
        return None
    return space if len(space) == n_models else None


def _configs_of(config: Mapping[str, Any] | None, n_models: int) -> list[ModelConfig] | None:
    space = _space_of(config, n_models)
    return space.models if space is not None else None


def load_run(folder: str | os.PathLike) -> SelectionResult:
    """Read a run folder back into a ``SelectionResult``.

    A finished run is read from its tables and ``result.json``; a run stopped before it finished
    is rebuilt from its checkpoint (then ``result.finished`` is False). ``winner``/``configs``
    are rebuilt from ``config.toml`` when it holds the space.

    Raises:
      FileNotFoundError: when the folder holds no run.
      jrobust.state.CheckpointMismatch: the folder holds only a pickled checkpoint of
        jrobust < 0.2 (never read).
      RunFolderError: when its files are damaged.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such run folder: {folder}")
    config = read_config(folder)
    if (folder / RESULT_FILE).is_file() and all(
        (folder / f"{t}.parquet").is_file() for t in TABLES
    ):
        return _from_tables(folder, config)
    if (folder / CHECKPOINT_FILE).is_file():
        return _from_checkpoint(folder, config)
    refuse_legacy(folder)
    raise FileNotFoundError(
        f"{folder} holds no jrobust results (no {RESULT_FILE} and tables, no {CHECKPOINT_FILE})"
    )


def _from_tables(folder: Path, config: Mapping[str, Any] | None) -> SelectionResult:
    try:
        payload = json.loads((folder / RESULT_FILE).read_text(encoding="utf-8"))
        tables = {t: pd.read_parquet(folder / f"{t}.parquet") for t in TABLES}
        winner_id = int(payload["winner_id"])
        winners = [int(w) for w in payload["winners"]]
        settings, timing = dict(payload["settings"]), dict(payload["timing"])
        n_trainings = int(payload["n_trainings"])
        dominance = payload.get("dominance")
        stages = [dict(s) for s in payload.get("stages") or []]
    except (OSError, ValueError, KeyError, TypeError, pyarrow.ArrowException) as err:
        raise RunFolderError(
            f"cannot read the run folder {folder}: {type(err).__name__}: {err}; it is damaged "
            f"(rebuild it with jrobust run --space {folder / CONFIG_FILE})"
        ) from None
    history = tables["history"]
    if "eliminated" in history:
        history["eliminated"] = [
            list(map(int, e)) if e is not None else [] for e in history["eliminated"]
        ]
    configs = _configs_of(config, len(tables["models"]))
    # folders of jrobust 0.2.0 and earlier: `stage` held "race"/"final", now `stage_kind`
    ledger, history, path = (
        stage_columns(t, stages) for t in (tables["ledger"], history, tables["path"])
    )
    return SelectionResult(
        winner=configs[winner_id] if configs else None,
        winner_id=winner_id,
        winners=winners,
        ledger=ledger,
        history=history,
        path=path,
        models=tables["models"],
        n_trainings=n_trainings,
        timing=timing,
        settings=settings,
        configs=configs,
        dominance=dominance,
        stages=stages,
    )


def _from_checkpoint(folder: Path, config: Mapping[str, Any] | None) -> SelectionResult:
    if not config or not config.get("race"):
        raise FileNotFoundError(
            f"{folder} holds a checkpoint but no {CONFIG_FILE} with its [race] settings"
        )
    try:
        settings = RaceSettings.from_table(config["race"]).resolved()
    except (ValueError, TypeError) as err:
        raise RunFolderError(f"{folder / CONFIG_FILE}: bad [race] settings: {err}") from None
    state = RaceState.load(folder / CHECKPOINT_FILE)
    n_models = len(state.alive)
    space = _space_of(config, n_models)
    if space is not None:
        models = space.to_frame()
    else:
        models = pd.DataFrame(
            {"model_id": range(n_models), "name": [f"model{i}" for i in range(n_models)]}
        )
    statistic = get_statistic(settings.statistic)
    rank_by = get_statistic(settings.rank_by) if settings.rank_by is not None else statistic
    return state.to_result(
        models,
        settings,
        statistic,
        rank_by,
        configs=space.models if space is not None else None,
    )
