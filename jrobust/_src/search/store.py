"""The losses a search has trained, by (global model, instance), and its checkpoint.

Every (model, instance) pair is trained once: an elite carried into the next iteration answers
its instances from here. The store is also the search's checkpoint: a search is a deterministic
function of its seed and of the losses it is told, so replaying it with the stored losses
rebuilds every iteration, race and sampling model exactly, and the first pair not stored is
where training resumes. The file (``search.npz``) is data only: arrays and one JSON member,
read with ``allow_pickle=False``, written atomically (``jrobust._src.atomic``).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from jrobust._src.atomic import write_atomic
from jrobust._src.race.checkpoint import CheckpointError, CheckpointMismatch
from jrobust._src.race.work import Outcome
from jrobust._version import __version__

__all__ = ["SEARCH_FILE", "LossStore"]

#: The search's checkpoint in its ``checkpoint_dir``.
SEARCH_FILE = "search.npz"
_FORMAT = 1


class LossStore:
    """The outcome of every (global model, instance) trained, in the order trained.

    Attributes:
      index: ``(model, instance)`` -> row.
      losses, ok, seconds: one entry per row; metrics: name -> one entry per row;
      transformed: one ``(T,)`` row per row (``None`` without transformed test sets); pairs:
      their ``(transform, param)``.
    """

    def __init__(self) -> None:
        self.index: dict[tuple[int, int], int] = {}
        self.losses: list[float] = []
        self.ok: list[bool] = []
        self.seconds: list[float] = []
        self.metrics: dict[str, list[float]] = {}
        self.transformed: list[np.ndarray] | None = None
        self.pairs: tuple | None = None

    def __len__(self) -> int:
        return len(self.losses)

    def __contains__(self, pair: tuple[int, int]) -> bool:
        return pair in self.index

    def add(self, models: np.ndarray, instances: np.ndarray, outcome: Outcome) -> None:
        """Store the outcome of newly trained pairs (``models[j]``, ``instances[j]``)."""
        n = len(models)
        per = outcome.seconds / n if n else 0.0
        for name in outcome.metrics:
            self.metrics.setdefault(name, [np.nan] * len(self.losses))
        if outcome.transformed is not None and self.transformed is None:
            self.transformed = [np.full(outcome.transformed.shape[1], np.nan)] * len(self.losses)
            self.pairs = outcome.pairs
        for j in range(n):
            self.index[(int(models[j]), int(instances[j]))] = len(self.losses)
            self.losses.append(float(outcome.losses[j]))
            self.ok.append(bool(outcome.ok[j]))
            self.seconds.append(float(per))
            for name, column in self.metrics.items():
                values = outcome.metrics.get(name)
                column.append(float(values[j]) if values is not None else np.nan)
            if self.transformed is not None:
                self.transformed.append(np.asarray(outcome.transformed[j], np.float64))

    def outcome(self, models: np.ndarray, instances: np.ndarray) -> Outcome:
        """The stored outcome of pairs, as an evaluator would report it (no seconds)."""
        rows = np.asarray(
            [self.index[(int(m), int(i))] for m, i in zip(models, instances, strict=True)], np.int64
        )
        losses = np.asarray(self.losses, np.float64)[rows] if len(rows) else np.zeros(0)
        ok = np.asarray(self.ok, bool)[rows] if len(rows) else np.zeros(0, bool)
        metrics = {k: np.asarray(v, np.float64)[rows] for k, v in self.metrics.items()}
        transformed = None
        if self.transformed is not None:
            transformed = np.stack([self.transformed[r] for r in rows]) if len(rows) else None
        return Outcome(losses, metrics, ok, transformed=transformed, pairs=self.pairs)

    # ------------------------------------------------------------------ the checkpoint
    def save(self, folder: str | os.PathLike, key: str, facts: dict[str, Any]) -> Path:
        """Write the store to ``folder/search.npz`` atomically (``key``: the search's
        fingerprint; ``facts``: JSON facts shown to a reader, never needed to resume)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        pairs = sorted(self.index.items(), key=lambda kv: kv[1])
        arrays: dict[str, np.ndarray] = {
            "model_id": np.asarray([p[0] for p, _ in pairs], np.int64),
            "instance": np.asarray([p[1] for p, _ in pairs], np.int64),
            "loss": np.asarray(self.losses, np.float64),
            "ok": np.asarray(self.ok, bool),
            "seconds": np.asarray(self.seconds, np.float64),
        }
        for name, column in self.metrics.items():
            arrays[f"metric.{name}"] = np.asarray(column, np.float64)
        if self.transformed is not None:
            arrays["transformed"] = np.stack(self.transformed) if self.transformed else np.zeros(0)
        meta = {
            "format": _FORMAT,
            "jrobust_version": __version__,
            "fingerprint": key,
            "pairs": [list(p) for p in self.pairs] if self.pairs else None,
            **facts,
        }
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        path = folder / SEARCH_FILE
        write_atomic(path, lambda fh: np.savez(fh, **arrays))
        return path

    @classmethod
    def load(cls, folder: str | os.PathLike, key: str) -> LossStore | None:
        """The store saved in ``folder`` (``None`` when there is none).

        Raises:
          CheckpointMismatch: it belongs to another search (space, budget, seed, settings, data
            or jrobust version).
          CheckpointError: the file is damaged.
        """
        path = Path(folder) / SEARCH_FILE
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as f:
                meta = json.loads(bytes(f["meta"]).decode())
                arrays = {k: f[k] for k in f.files if k != "meta"}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
            raise CheckpointError(
                f"cannot read the search checkpoint {path} ({type(err).__name__}: {err}); it is "
                "damaged: delete it to start the search afresh"
            ) from None
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise CheckpointMismatch(
                f"the search checkpoint {path} has another format; start afresh in a new folder"
            )
        if meta.get("fingerprint") != key:
            raise CheckpointMismatch(
                f"the search checkpoint {path} belongs to a different search (another space, "
                "population, budget, seed, settings or jrobust version); resume with exactly the "
                "same arguments, or use a new checkpoint_dir"
            )
        store = cls()
        try:
            models, instances = arrays["model_id"], arrays["instance"]
            n = len(models)
            if any(len(arrays[k]) != n for k in ("instance", "loss", "ok", "seconds")):
                raise ValueError("columns of different lengths")
            store.index = {
                (int(m), int(i)): j for j, (m, i) in enumerate(zip(models, instances, strict=True))
            }
            store.losses = arrays["loss"].astype(np.float64).tolist()
            store.ok = arrays["ok"].astype(bool).tolist()
            store.seconds = arrays["seconds"].astype(np.float64).tolist()
            store.metrics = {
                k[len("metric.") :]: v.astype(np.float64).tolist()
                for k, v in arrays.items()
                if k.startswith("metric.")
            }
            if "transformed" in arrays:
                store.transformed = list(arrays["transformed"].astype(np.float64))
                store.pairs = tuple(tuple(p) for p in meta.get("pairs") or ()) or None
        except (KeyError, ValueError, TypeError) as err:
            raise CheckpointError(
                f"the search checkpoint {path} is damaged ({err}): delete it to start afresh"
            ) from None
        return store
