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
from typing import Any

import numpy as np
import pandas as pd

from jrobust._atomic import write_atomic
from jrobust._src.race.ledger import Ledger
from jrobust._src.race.state import RaceState
from jrobust._version import __version__

__all__ = [
    "CHECKPOINT_FILE",
    "LEGACY_CHECKPOINT_FILE",
    "CheckpointError",
    "CheckpointMismatch",
    "fingerprint",
    "load_state",
    "peek",
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


def save_state(
    state: RaceState,
    path: str | os.PathLike,
    key: str,
    definition: dict[str, Any] | None = None,
) -> None:
    """Write ``state`` atomically (a temporary file, flushed to disk, then renamed): a failure
    at any point, a full disk included, leaves the previous checkpoint intact.

    Args:
      state: the race state; path: the ``.npz`` file; key: the race's fingerprint.
      definition: what defines the race, JSON-ready (``Race.load`` rebuilds it from this).
    """
    meta = {
        "format": CHECKPOINT_FORMAT,
        "jrobust_version": __version__,
        "fingerprint": key,
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

    Returns:
      ``(state, meta)``: the state, its ledger's tables rebuilt from its rows, and the
      checkpoint's JSON (its ``definition``, ``fingerprint``, ...).

    Raises:
      CheckpointMismatch: the checkpoint belongs to another race or format.
      CheckpointError: the file is not a readable checkpoint.
    """
    path = Path(path)
    _check_zip(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(bytes(f["meta"]).decode())
            _check_meta(meta, path, key)
            arrays = {k: f[k] for k in f.files if k != "meta"}
        alive = arrays["alive"].astype(bool)
        ledger = Ledger.from_frame(len(alive), _frame("ledger", arrays), int(meta["width"]))
        path_rows = _rows("path", arrays)
        fields = {f: meta[f] for f in _META_FIELDS}
    except (CheckpointMismatch, CheckpointError):
        raise
    except (OSError, ValueError, KeyError, IndexError, TypeError, zipfile.BadZipFile) as err:
        raise CheckpointError(
            f"cannot read the checkpoint {path} ({type(err).__name__}: {err}); it is damaged: "
            "delete it to start the race afresh"
        ) from None
    return RaceState(ledger=ledger, alive=alive, path=path_rows, **fields), meta


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
    if meta.get("format") != CHECKPOINT_FORMAT:
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
    frame = _frame(prefix, arrays)
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
