"""Checkpoints: a race's state as data only, written atomically after every round.

One ``.npz`` of plain arrays (read with ``allow_pickle=False``): the ledger's and the path's
columns, the alive mask, and a ``meta`` member of JSON (the counters, the history, the stages,
the race's fingerprint and, for ``Race.load``, what defines the race: its settings, its models'
names and configurations). The loss tables are not stored: they are rebuilt from the ledger's
rows, the one source. Nothing in a checkpoint can run code when it is read; the pickled
checkpoints of jrobust < 0.2 (``checkpoint.pkl``) are never opened.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from jrobust._src.atomic import write_atomic
from jrobust._src.race.ledger import Ledger
from jrobust._src.race.state import RaceState
from jrobust._version import __version__

if TYPE_CHECKING:
    from jrobust._src.config import ModelConfig
    from jrobust._src.settings import RaceSettings

__all__ = [
    "CHECKPOINT_FILE",
    "LEGACY_CHECKPOINT_FILE",
    "CheckpointError",
    "CheckpointMismatch",
    "belongs_to",
    "fingerprint",
    "load_state",
    "peek",
    "race_fingerprint",
    "refuse_legacy",
    "save_state",
]

CHECKPOINT_FILE = "checkpoint.npz"
LEGACY_CHECKPOINT_FILE = "checkpoint.pkl"
CHECKPOINT_FORMAT = 3

# The state's fields kept in the checkpoint's JSON (the tables are arrays).
_META_FIELDS = (
    "round",
    "n_trainings",
    "history",
    "removed_counts",
    "compile_seconds",
    "train_seconds",
    "done",
    "stop_reason",
    "stage",
    "stage_start",
    "stage_round",
    "stage_models",
    "elites",
    "stages",
)


class CheckpointMismatch(ValueError):
    """A checkpoint that belongs to another race (or another format): bad input."""


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or written (corrupt file, full disk)."""


def fingerprint(parts: Sequence[Any]) -> str:
    """A hash of what defines a race (version, settings, models, data)."""
    h = hashlib.sha1()
    for p in parts:
        h.update(repr(p).encode())
    return h.hexdigest()


def race_fingerprint(
    settings: RaceSettings,
    configs: Sequence[ModelConfig] | None,
    n_models: int,
    data_fingerprint: str | None,
    version: str = __version__,
) -> str:
    """The fingerprint of a race, which its checkpoint carries: a checkpoint is resumed, and a
    run folder read, only when the settings, models and data give the same one.

    Args:
      settings: the resolved race settings (their ``identity()`` counts, not execution options).
      configs: the models (``None`` for a bare model count).
      n_models: the number of models (counts when ``configs`` is ``None``).
      data_fingerprint: ``Population.fingerprint()`` of the data (``None`` without data).
      version: the jrobust version that wrote the checkpoint.

    Returns:
      A hex string.
    """
    return fingerprint(
        [
            version,
            settings.identity(),
            # the full form: checkpoints of earlier versions were keyed on it
            [c.full_repr() for c in configs] if configs is not None else n_models,
            data_fingerprint,
        ]
    )


def belongs_to(
    path: str | os.PathLike,
    settings: RaceSettings,
    configs: Sequence[ModelConfig] | None,
    n_models: int,
) -> bool | None:
    """Whether the checkpoint at ``path`` is one of the race of ``settings`` and ``configs``
    (``race_fingerprint`` with the data's part the checkpoint keeps, its settings resolved as
    its race resolved them); ``None`` when it cannot tell (a checkpoint that keeps no data
    part).

    Raises:
      CheckpointError: the file is not a readable checkpoint.
    """
    from jrobust._src.race.resolved import ResolvedRace

    meta = peek(path)
    if not isinstance(meta, dict) or "data_fingerprint" not in meta:
        return None
    version = str(meta.get("jrobust_version", __version__))
    data = meta["data_fingerprint"]
    trainer = (meta.get("definition") or {}).get("trainer", "jax" if data else "external")
    resolved = ResolvedRace.of(settings, batched=trainer == "jax").settings
    return race_fingerprint(resolved, configs, n_models, data, version) == meta.get("fingerprint")


def save_state(
    state: RaceState,
    path: str | os.PathLike,
    key: str,
    definition: dict[str, Any] | None = None,
    data_fingerprint: str | None = None,
) -> None:
    """Write ``state`` atomically (a temporary file, flushed to disk, then renamed): a failure
    at any point, a full disk included, leaves the previous checkpoint intact.

    Args:
      state: the race state; path: the ``.npz`` file; key: the race's fingerprint.
      definition: what defines the race, JSON-ready (``Race.load`` rebuilds it from this).
      data_fingerprint: the data's part of ``key``, kept so that a run folder's checkpoint can
        be checked against its ``config.toml`` without loading the data (``belongs_to``).
    """
    meta = {
        "format": CHECKPOINT_FORMAT,
        "jrobust_version": __version__,
        "fingerprint": key,
        "data_fingerprint": data_fingerprint,
        "n_models": state.n_models,
        "width": int(state.ledger.losses.shape[1]),
        "definition": definition or {},
        **{f: getattr(state, f) for f in _META_FIELDS},
    }
    arrays = {"alive": state.alive}
    arrays |= _columns("ledger", state.ledger.frame(sort=False))
    arrays |= _columns("path", pd.DataFrame(state.path))
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    write_atomic(Path(path), lambda fh: np.savez(fh, **arrays))


def load_state(path: str | os.PathLike, key: str | None = None) -> tuple[RaceState, dict[str, Any]]:
    """Read a checkpoint (data only, never pickle), checking its fingerprint first.

    Checkpoints of jrobust 0.2 (format 2) are read too, for a report of a stopped run; they do
    not resume (another version's fingerprint).

    Returns:
      ``(state, meta)``: the state, its ledger's tables rebuilt from its rows, and the
      checkpoint's JSON (its ``definition``, ``fingerprint``, ...).

    Raises:
      CheckpointMismatch: the checkpoint belongs to another race or format.
      CheckpointError: the file is not a readable checkpoint (the message names it).
    """
    path = Path(path)
    _check_zip(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(bytes(f["meta"]).decode())
            if not isinstance(meta, dict):
                raise _Shape("its meta entry is not a table")
            _check_meta(meta, path, key)
            arrays = {k: f[k] for k in f.files if k != "meta"}
        if meta["format"] == 2:
            return _format_2(meta, arrays), meta
        _check_shapes(arrays)
        alive = arrays["alive"].astype(bool)
        ledger = Ledger.from_frame(len(alive), _frame("ledger", arrays), int(meta["width"]))
        path_rows = _rows("path", arrays)
        fields = {f: meta[f] for f in _META_FIELDS}
    except (CheckpointMismatch, CheckpointError):
        raise
    except _Shape as err:
        raise CheckpointError(
            f"the checkpoint {path} is damaged ({err}): delete it to start the race afresh"
        ) from None
    except (OSError, ValueError, KeyError, IndexError, TypeError, zipfile.BadZipFile) as err:
        raise CheckpointError(
            f"cannot read the checkpoint {path} ({type(err).__name__}: {err}); it is damaged: "
            "delete it to start the race afresh"
        ) from None
    return RaceState(ledger=ledger, alive=alive, path=path_rows, **fields), meta


class _Shape(ValueError):
    """Arrays of a checkpoint whose shapes do not fit together."""


def _check_shapes(arrays: dict[str, np.ndarray]) -> None:
    """The tables of a checkpoint fit each other: ``alive`` ``(M,)``, ledger and path columns of
    one length each, the ledger's models inside ``M`` and its instances not negative."""
    if "alive" not in arrays or arrays["alive"].ndim != 1:
        raise _Shape("its arrays have the wrong shape: no alive mask of one entry per model")
    n_models = len(arrays["alive"])
    for prefix in ("ledger", "path"):
        shapes = {v.shape for k, v in arrays.items() if k.startswith(prefix + ".")}
        if len(shapes) > 1 or any(len(shape) != 1 for shape in shapes):
            raise _Shape(
                f"its arrays have the wrong shape: {prefix} columns of different lengths "
                f"{sorted(shapes)}"
            )
    for column, low, high in (("ledger.model_id", 0, n_models), ("ledger.instance", 0, None)):
        values = arrays.get(column)
        if (
            values is not None
            and len(values)
            and (values.min() < low or (high is not None and values.max() >= high))
        ):
            raise _Shape(f"its arrays have the wrong shape: {column} outside the {n_models} models")


def _format_2(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> RaceState:
    """A checkpoint of jrobust 0.2 (its tables as arrays beside the rows; ``stage`` held the
    kind ``"race"``/``"final"``), as a state of this version."""
    from jrobust._src.race.stages import stage_columns

    alive = arrays["alive"].astype(bool)
    stages = meta.get("stages") or []
    frame = stage_columns(_frame("ledger", arrays), stages)
    width = int(arrays["losses"].shape[1]) if "losses" in arrays else 0
    ledger = Ledger.from_frame(len(alive), frame, width)
    history = stage_columns(pd.DataFrame(meta.get("history") or []), stages)
    path = stage_columns(pd.DataFrame(_rows("path", arrays)), stages)
    fields = {f: meta.get(f, _FORMAT_2_DEFAULTS.get(f)) for f in _META_FIELDS}
    fields["history"] = _records(history)
    if fields["stage_round"] is None:
        fields["stage_round"] = fields["round"]
    return RaceState(ledger=ledger, alive=alive, path=_records(path), **fields)


# What a checkpoint of format 2 written before stages existed stands for (one stage from 0).
_FORMAT_2_DEFAULTS = {"stage": 0, "stage_start": 0, "stage_models": 0, "elites": [], "stages": []}


def peek(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON facts of a checkpoint (round, trainings, done, ...) without its tables."""
    _check_zip(Path(path))
    try:
        with np.load(Path(path), allow_pickle=False) as f:
            return json.loads(bytes(f["meta"]).decode())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"cannot read the checkpoint {path}: {err}") from None


def refuse_legacy(folder: str | os.PathLike) -> None:
    """Refuse a folder holding a pickled checkpoint of jrobust < 0.2, without opening it."""
    legacy = Path(folder) / LEGACY_CHECKPOINT_FILE
    if legacy.exists():
        raise CheckpointMismatch(
            f"{legacy} is a checkpoint in the pickle format of jrobust < 0.2, which is never read "
            "(unpickling a file can run code); rerun that race in a new folder "
            f"(jrobust run --space {Path(folder) / 'config.toml'} --out NEW_FOLDER), or delete "
            "the file"
        )


def _check_zip(path: Path) -> None:
    """A checkpoint is a zip archive (``.npz``); anything else is named for what it is."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as err:
        raise CheckpointError(f"cannot read the checkpoint {path}: {err}") from None
    if magic != b"PK\x03\x04":
        raise CheckpointError(
            f"the checkpoint {path} is damaged (it is not an .npz archive; was it overwritten?): "
            "delete it to start the race afresh"
        )


def _check_meta(meta: dict, path: Path, key: str | None) -> None:
    if meta.get("format") not in (2, CHECKPOINT_FORMAT):
        raise CheckpointMismatch(
            f"the checkpoint {path} has format {meta.get('format')!r}, this jrobust reads format "
            f"{CHECKPOINT_FORMAT}; start the race afresh in a new folder"
        )
    if key is not None and meta.get("fingerprint") != key:
        raise CheckpointMismatch(
            f"the checkpoint {path} belongs to a different race (another space, data, settings or "
            "jrobust version); resume with exactly the same arguments, or use a new checkpoint_dir"
        )


def _columns(prefix: str, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    out = {}
    for col in frame.columns:
        values = frame[col].to_numpy()
        out[f"{prefix}.{col}"] = values.astype(str) if values.dtype == object else values
    return out


def _frame(prefix: str, arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    cols = {k[len(prefix) + 1 :]: v for k, v in arrays.items() if k.startswith(prefix + ".")}
    return pd.DataFrame(cols)


def _rows(prefix: str, arrays: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    return _records(_frame(prefix, arrays))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
