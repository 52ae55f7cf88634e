"""Saving a race as a run folder, and reading one back (``save_run``, ``load_run``).

``save_run`` writes the tables, figures, summary and report, and ``result.json`` last: a folder
with a ``result.json`` is complete. A search (``jrobust.search``) adds ``iterations.parquet``
and keeps its sampled models as data in ``result.json`` (it has no list of models to rebuild
them from). ``load_run`` reads a complete folder back into a ``SelectionResult``; a folder
whose race was stopped before its end is rebuilt from its checkpoint
(``SelectionResult.from_state``, the same code that ends a race), so ``jrobust report DIR``
can rebuild the summary and figures at any time. Nothing is unpickled.
"""

from __future__ import annotations

import ast
import datetime as _dt
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow

from jrobust._src.atomic import write_text_atomic
from jrobust._src.config import ModelConfig, config_from_dict, config_to_dict
from jrobust._src.race.checkpoint import belongs_to, load_state, peek, refuse_legacy
from jrobust._src.race.resolved import ResolvedRace
from jrobust._src.result import ITERATION_COLUMNS, SelectionResult, id_list, stage_columns
from jrobust._src.runfolder.layout import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    FIGURES,
    ITERATIONS_TABLE,
    PROGRAMS_TABLE,
    RESULT_FILE,
    SAMPLE_SIZE_TABLE,
    TABLES,
    read_config,
    write_config,
    write_table,
)
from jrobust._src.runfolder.report import write_figures, write_report
from jrobust._src.runfolder.summary import programs_view, write_summary
from jrobust._src.settings import RaceSettings
from jrobust._src.space.files import SpaceError, build_space
from jrobust._version import __version__

__all__ = ["RunFolderError", "RunFolderMismatch", "load_run", "read_result_json", "save_run"]

FORMAT_VERSION = 1


class RunFolderError(RuntimeError):
    """A run folder whose files cannot be read (damaged, truncated, not jrobust's)."""


class RunFolderMismatch(ValueError):
    """A run folder whose files disagree with each other (a checkpoint of another race, a
    ``config.toml`` edited after the run): nothing of it is shown as this run's."""


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
    """Save a race result as a run folder (see ``jrobust._src.runfolder`` for its files).

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
    if result.iterations is not None:
        write_table(iterations_on_disk(result.iterations), folder, ITERATIONS_TABLE, csv)
    else:  # a race saved over a search's folder: its iterations are not this result's
        for stale in (
            f"{ITERATIONS_TABLE}.parquet",
            f"{ITERATIONS_TABLE}.csv",
            FIGURES["iterations"],
        ):
            (folder / stale).unlink(missing_ok=True)
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
    if result.iterations is not None and result.configs is not None:
        # a search's models were sampled: config.toml's space cannot list them again
        sampled = [config_to_dict(c) for c in result.configs]
        payload["configs"] = None if any(c is None for c in sampled) else sampled
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


def iterations_on_disk(frame: pd.DataFrame) -> pd.DataFrame:
    """The iterations table as Parquet holds it: ``centre`` (a number for a range, a choice's
    ``repr`` for a categorical) as text, read back by ``kind`` (``read_iterations``)."""
    out = frame.copy()
    out["centre"] = [_centre_text(v) for v in frame["centre"]]
    return out


def _centre_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return repr(float(value))  # the shortest text that reads back to the same float
    return repr(value)


def _centre_value(text: Any, kind: str) -> Any:
    if text is None or kind == "categorical" or not isinstance(text, str):
        return text
    try:
        number = float(text)
    except ValueError:  # e.g. a width's tuple "(16, 16)": a literal, read as data only
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return text
    return int(number) if kind == "int" and number.is_integer() else number


def read_iterations(folder: str | os.PathLike) -> pd.DataFrame | None:
    """A run folder's ``iterations.parquet`` as ``SelectionResult.iterations`` (``None`` when
    the folder holds a race: it has no such file).

    Raises:
      RunFolderError: when the file is damaged or lacks a column.
    """
    folder = Path(folder)
    path = folder / f"{ITERATIONS_TABLE}.parquet"
    if not path.is_file():
        return None
    name = path.name
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, pyarrow.ArrowException) as err:
        raise _damaged(folder, name, f"{type(err).__name__}: {err}") from None
    if tuple(frame.columns) != ITERATION_COLUMNS:
        raise _damaged(
            folder, name, f"its columns are {list(frame.columns)}, not {list(ITERATION_COLUMNS)}"
        )
    frame["centre"] = [
        _centre_value(t, k) for t, k in zip(frame["centre"], frame["kind"], strict=True)
    ]
    return frame


def _iteration_problems(
    iterations: pd.DataFrame, model_ids: set[int], winner_id: int, space: Any
) -> list[str]:
    """What a search's ``iterations.parquet`` disagrees with: the models of ``models.parquet``
    (every model sampled once, in one iteration), the winner (an elite of the last iteration)
    and the parameters of ``config.toml``'s space."""
    name = f"{ITERATIONS_TABLE}.parquet"
    problems = []
    sampled: list[int] = []
    elites: list[int] = []
    for iteration, rows in iterations.groupby("iteration", sort=True):
        if rows["candidates"].nunique() > 1 or rows["elites"].nunique() > 1:
            problems.append(f"{name} gives iteration {iteration} different models per parameter")
        sampled += id_list(rows["candidates"].iloc[0])
        elites = id_list(rows["elites"].iloc[0])
        unknown = sorted({*id_list(rows["candidates"].iloc[0]), *elites} - model_ids)
        if unknown:
            problems.append(
                f"{name} names models {unknown} in iteration {iteration} that models.parquet "
                "does not hold"
            )
    if sorted(sampled) != sorted(model_ids):
        problems.append(
            f"{name} samples {len(sampled)} models ({len(set(sampled))} distinct), models.parquet "
            f"holds {len(model_ids)}"
        )
    if elites and winner_id not in elites:
        problems.append(
            f"{RESULT_FILE} names model {winner_id} as the winner, but the last iteration of "
            f"{name} kept the elites {elites}"
        )
    if space is not None:
        names = list(dict.fromkeys(iterations["parameter"]))
        if set(names) != set(space.parameters):
            problems.append(
                f"{name} searched the parameters {names}, {CONFIG_FILE}'s space has "
                f"{list(space.parameters)} (was {CONFIG_FILE} edited after the run?)"
            )
    return problems


def _sampled_configs(folder: Path, payload: Mapping[str, Any]) -> list[ModelConfig] | None:
    """A search's sampled models, kept as data in ``result.json`` (``None`` when it holds
    none, e.g. a model of one's own Flax module)."""
    data = payload.get("configs")
    if data is None:
        return None
    try:
        return [config_from_dict(c) for c in data]
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise _damaged(folder, RESULT_FILE, f"its configs: {type(err).__name__}: {err}") from None


def load_run(folder: str | os.PathLike) -> SelectionResult:
    """Read a run folder back into a ``SelectionResult``.

    A finished run is read from its tables and ``result.json``; a run stopped before it finished
    is rebuilt from its checkpoint (then ``result.finished`` is False). ``winner``/``configs``
    are rebuilt from ``config.toml`` when it holds the space.

    Nothing is trusted that was not checked: the checkpoint must carry the race fingerprint of
    ``config.toml`` (the one ``--resume`` checks), ``result.json``'s winner must be the
    configuration ``config.toml`` gives that model id, and the trainings of ``result.json`` and
    the checkpoint must agree. A search's ``iterations.parquet`` (``result.iterations``; ``None``
    for a race) must sample every model of ``models.parquet`` once, keep the winner among the
    last iteration's elites and search the parameters of ``config.toml``'s space; its models
    are read from ``result.json``.

    Raises:
      FileNotFoundError: when the folder holds no run.
      CheckpointMismatch (a ValueError): the folder holds only a pickled checkpoint of
        jrobust < 0.2 (never read).
      RunFolderMismatch: when its files disagree with each other (the message names them).
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
    if _has_ranges(config):
        raise FileNotFoundError(
            f"{folder} holds a search that has not finished (no {RESULT_FILE} yet): continue it "
            f"with jrobust run --resume {folder}; its report is written when it ends"
        )
    if (folder / CHECKPOINT_FILE).is_file():
        return _from_checkpoint(folder, config)
    refuse_legacy(folder)
    raise FileNotFoundError(
        f"{folder} holds no jrobust results (no {RESULT_FILE} and tables, no {CHECKPOINT_FILE})"
    )


def _damaged(folder: Path, name: str, why: str) -> RunFolderError:
    return RunFolderError(
        f"cannot read the run folder {folder}: {folder / name} is damaged ({why}); rebuild it "
        f"with jrobust run --space {folder / CONFIG_FILE}"
    )


# The members of result.json and the types they must have (a damaged or edited file is named).
_RESULT_TYPES = {
    "winner_id": int,
    "winners": list,
    "n_trainings": int,
    "settings": dict,
    "timing": dict,
}
_OPTIONAL_TYPES = {"info": dict, "dominance": dict, "stages": list}


def read_result_json(folder: str | os.PathLike) -> dict[str, Any]:
    """``result.json`` of a run folder, checked member by member.

    Raises:
      RunFolderError: when it is not valid JSON or a member has the wrong type (the message
        names the file and the member).
    """
    folder = Path(folder)
    try:
        payload = json.loads((folder / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise _damaged(folder, RESULT_FILE, f"{type(err).__name__}: {err}") from None
    if not isinstance(payload, dict):
        raise _damaged(folder, RESULT_FILE, f"a JSON {type(payload).__name__}, not an object")
    for key, kind in (*_RESULT_TYPES.items(), *_OPTIONAL_TYPES.items()):
        value = payload.get(key)
        if value is None and key in _OPTIONAL_TYPES:
            continue
        if isinstance(value, bool) or not isinstance(value, kind):
            what = {dict: "a JSON object", list: "a JSON list", int: "an integer"}[kind]
            raise _damaged(folder, RESULT_FILE, f"{key} is {value!r}, not {what}")
    if not all(isinstance(w, int) and not isinstance(w, bool) for w in payload["winners"]):
        raise _damaged(folder, RESULT_FILE, f"winners {payload['winners']!r} are not model ids")
    return payload


def _from_tables(folder: Path, config: Mapping[str, Any] | None) -> SelectionResult:
    """The result of a finished run folder: its tables and ``result.json``, checked against each
    other and against ``config.toml``."""
    payload = read_result_json(folder)
    try:
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
    ids = set(tables["models"]["model_id"].tolist()) if "model_id" in tables["models"] else set()
    why = _winners_problem(ids, winner_id, winners)
    if why:
        raise _damaged(folder, RESULT_FILE, why)
    history = _history_lists(tables["history"])
    iterations = read_iterations(folder)
    configs = _checked_configs(
        folder, config, payload, len(tables["models"]), ids, iterations, n_trainings
    )
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
        iterations=iterations,
    )


def _winners_problem(ids: set, winner_id: int, winners: list[int]) -> str:
    """What is wrong with ``result.json``'s winners given the models' ids (``""`` when nothing)."""
    unknown = [w for w in winners if w not in ids]
    return (
        f"winner_id {winner_id} is not a model id of models.parquet"
        if winner_id not in ids
        else f"winners {unknown} are not model ids of models.parquet"
        if unknown
        else f"winners {winners} do not start with winner_id {winner_id}"
        if winners and winners[0] != winner_id
        else ""
    )


def _history_lists(history: pd.DataFrame) -> pd.DataFrame:
    """The history's list columns as plain lists of ints (parquet gives arrays, or None)."""
    if "eliminated" in history:
        history["eliminated"] = [
            list(map(int, e)) if e is not None else [] for e in history["eliminated"]
        ]
    for column in ("swaps", "finalist_swaps"):  # pairs [kept, removed instead], as written
        if column in history:
            history[column] = [
                [[int(m) for m in p] for p in e] if e is not None else [] for e in history[column]
            ]
    return history


def _checked_configs(
    folder: Path,
    config: Mapping[str, Any] | None,
    payload: Mapping[str, Any],
    n_models: int,
    ids: set,
    iterations: pd.DataFrame | None,
    n_trainings: int,
) -> list | None:
    """The models' configurations (from the space, or a search's samples; ``None`` without a
    space), refused when they, the iterations or the checkpoint disagree with the tables."""
    winner_id = int(payload["winner_id"])  # read and checked by the caller
    space = _space_or_mismatch(folder, config, n_models, "models.parquet")
    searched = iterations is not None or (space is not None and not space.is_finite)
    if searched:
        configs = _sampled_configs(folder, payload)
    else:
        configs = space.models if space is not None else None
    if configs is not None and len(configs) != n_models:
        raise _damaged(folder, RESULT_FILE, f"{len(configs)} configs for the {n_models} models")
    problems = []
    shown = payload.get("winner_config")
    if configs is not None and shown is not None and configs[winner_id].full_repr() != shown:
        problems.append(
            f"{RESULT_FILE} names model {winner_id} as the winner with another configuration than "
            f"{CONFIG_FILE} gives model {winner_id} (was {CONFIG_FILE} edited after the run?)"
        )
    if iterations is not None:
        problems += _iteration_problems(iterations, ids, winner_id, space)
    if not searched:  # a search's checkpoint is the search's own, checked when it resumes
        problems += _checkpoint_problems(folder, config, configs, n_models, n_trainings)
    _refuse(folder, problems)
    return configs


def _space_or_mismatch(folder: Path, config: Mapping[str, Any] | None, n_models: int, what: str):
    """The space of ``config.toml`` (``None`` when it holds none); a ``RunFolderMismatch``
    when its models are not the ``n_models`` of ``what`` (a space with ranges has no count:
    a search's models are checked against its iterations)."""
    if not config or not config.get("space"):
        return None
    try:
        space = build_space(config["space"])
    except (SpaceError, ValueError, TypeError):
        return None
    if not space.is_finite:
        return space
    if len(space) != n_models:
        _refuse(
            folder,
            [f"{CONFIG_FILE} describes {len(space)} models, {what} holds {n_models}"],
        )
    return space


def _has_ranges(config: Mapping[str, Any] | None) -> bool:
    """Whether ``config.toml``'s space has ranges (a search's folder)."""
    if not config or not config.get("space"):
        return False
    try:
        return not build_space(config["space"]).is_finite
    except (SpaceError, ValueError, TypeError):
        return False


def _checkpoint_problems(
    folder: Path,
    config: Mapping[str, Any] | None,
    configs: list[ModelConfig] | None,
    n_models: int,
    n_trainings: int | None = None,
) -> list[str]:
    """What the folder's checkpoint disagrees with: ``config.toml`` (the race fingerprint that
    ``--resume`` checks, ``race/checkpoint.py``'s ``race_fingerprint``), and the trainings of
    ``result.json`` (``n_trainings``, for a finished run)."""
    path = folder / CHECKPOINT_FILE
    if not path.is_file() or not config or not config.get("race"):
        return []
    try:
        settings = RaceSettings.from_table(config["race"])
    except (ValueError, TypeError) as err:
        raise RunFolderError(f"{folder / CONFIG_FILE}: bad [race] settings: {err}") from None
    problems = []
    if belongs_to(path, settings, configs, n_models) is False:
        problems.append(
            f"{CHECKPOINT_FILE} belongs to another race than {CONFIG_FILE} (another space, "
            "settings, seed or data)"
        )
    if n_trainings is not None:
        done = peek(path).get("n_trainings")
        if done != n_trainings:
            problems.append(
                f"{CHECKPOINT_FILE} holds {done} trainings, {RESULT_FILE} {n_trainings}"
            )
    return problems


def _refuse(folder: Path, problems: list[str]) -> None:
    if problems:
        raise RunFolderMismatch(
            f"the files of the run folder {folder} disagree: {'; '.join(problems)}; nothing of "
            f"it is shown as this run's: rerun it with jrobust run --space {folder / CONFIG_FILE} "
            "--out NEW_FOLDER, or restore the files"
        )


def _from_checkpoint(folder: Path, config: Mapping[str, Any] | None) -> SelectionResult:
    if not config or not config.get("race"):
        raise FileNotFoundError(
            f"{folder} holds a checkpoint but no {CONFIG_FILE} with its [race] settings"
        )
    try:
        race = ResolvedRace.of(RaceSettings.from_table(config["race"]), batched=True)
    except (ValueError, TypeError) as err:
        raise RunFolderError(f"{folder / CONFIG_FILE}: bad [race] settings: {err}") from None
    state, _ = load_state(folder / CHECKPOINT_FILE)
    n_models = state.n_models
    space = _space_or_mismatch(folder, config, n_models, CHECKPOINT_FILE)
    _refuse(folder, _checkpoint_problems(folder, config, space.models if space else None, n_models))
    if space is not None:
        models = space.to_frame()
    else:
        models = pd.DataFrame(
            {"model_id": range(n_models), "name": [f"model{i}" for i in range(n_models)]}
        )
    return SelectionResult.from_state(
        state, race, models, configs=space.models if space is not None else None
    )
