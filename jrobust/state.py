"""``RaceState``: the ledger of a race so far and the steps of Algorithm 1 that change it.

A round of the race (Boldyrev, Ratnikov, Shevelev, IEEE Access 2025, Algorithm 1) is
``plan`` (which new instances to train), ``record`` (their losses), ``apply_rule`` (who leaves)
and ``save`` (the checkpoint). ``to_result`` turns a state into a ``SelectionResult``, for a
finished race and for a run folder whose race was stopped alike.

Checkpoints hold data only: one ``.npz`` of plain arrays (read with ``allow_pickle=False``) whose
``meta`` entry is JSON. Nothing in a checkpoint can run code when it is read. The pickled
checkpoints of jrobust < 0.2 (``checkpoint.pkl``) are never loaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from jrobust._atomic import write_atomic
from jrobust._version import __version__
from jrobust.config import ModelConfig
from jrobust.result import SelectionResult
from jrobust.rules import Rule
from jrobust.settings import RaceSettings
from jrobust.stats import Statistic

__all__ = [
    "CHECKPOINT_FILE",
    "LEGACY_CHECKPOINT_FILE",
    "DIVERGED_FACTOR",
    "DIVERGED_LOSS",
    "CheckpointError",
    "CheckpointMismatch",
    "Outcome",
    "RaceState",
    "Work",
    "best_models",
    "fingerprint",
    "refuse_legacy",
]

CHECKPOINT_FILE = "checkpoint.npz"
LEGACY_CHECKPOINT_FILE = "checkpoint.pkl"
CHECKPOINT_FORMAT = 2

#: An instance is ``diverged`` when its loss is finite but its magnitude is at least
#: ``DIVERGED_LOSS``, or more than ``DIVERGED_FACTOR`` times the median magnitude of every finite
#: loss in the ledger so far. Its loss still counts in the statistics: divergence is
#: non-robustness, and the statistics should see it.
DIVERGED_FACTOR = 1e3
DIVERGED_LOSS = 1e10


class CheckpointMismatch(ValueError):
    """A checkpoint that belongs to another race (or another format): bad input."""


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or written (corrupt file, full disk)."""


class Work(NamedTuple):
    """The instances of one round: ``models[j]`` trains instance ``instances[j]`` on a training
    subset of ``train_size[j]`` events (``train_size=None``: each model's own ``train_size``).
    A round of a race has one size for all its instances (its stage's)."""

    models: np.ndarray  # (W,) int64
    instances: np.ndarray  # (W,) int64
    train_size: np.ndarray | None = None  # (W,) int64, or None


class Outcome(NamedTuple):
    """What an evaluator reports for a ``Work`` list."""

    losses: np.ndarray  # (W,) float64: the test loss (non-finite: failed)
    metrics: dict[str, np.ndarray]  # name -> (W,): further test metrics (and "epochs")
    ok: np.ndarray  # (W,) bool: False for a failed instance
    seconds: float = 0.0  # training wall time, compilation excluded
    compile_seconds: float = 0.0
    instance_steps: int = 0  # optimizer steps, summed over the instances


def fingerprint(parts: Sequence[Any]) -> str:
    """A hash of what defines a race (version, settings, models, data)."""
    h = hashlib.sha1()
    for p in parts:
        h.update(repr(p).encode())
    return h.hexdigest()


def best_models(
    statistic: Statistic,
    rank_by: Statistic,
    losses: np.ndarray,
    mask: np.ndarray,
    alive: np.ndarray,
    n: int,
) -> np.ndarray:
    """The ``n`` best alive models by ``rank_by`` (ties: ``statistic``, then the lower id)."""
    ids = np.flatnonzero(alive)
    r = rank_by(losses, mask)[ids]
    s = statistic(losses, mask)[ids]
    return ids[np.lexsort((ids, s, r))[:n]]


def _statuses(losses: np.ndarray, ok: np.ndarray, reference: np.ndarray) -> np.ndarray:
    finite = np.isfinite(losses) & ok
    scale = np.median(np.abs(reference)) if reference.size else 0.0
    size = np.abs(np.where(finite, losses, 0.0))
    diverged = finite & ((size >= DIVERGED_LOSS) | ((scale > 0) & (size > DIVERGED_FACTOR * scale)))
    return np.where(~finite, "failed", np.where(diverged, "diverged", "ok"))


@dataclasses.dataclass
class RaceState:
    """Everything a race has learned so far; ``save``/``load`` make it a checkpoint.

    Attributes:
      losses: ``(M, N)`` float64 instance losses (NaN: not trained, +inf: failed).
      mask: ``(M, N)`` bool, True where an instance is trained.
      alive: ``(M,)`` bool, the models still racing.
      round: rounds completed; n_trainings: instances trained.
      records, history, path: rows of the ledger, history and path tables.
      removed_counts: models removed by each elimination (for the patience stop).
      compile_seconds, train_seconds: summed over the rounds.
      done, stop_reason: whether and why the race ended (``winners``, ``patience``,
        ``max_instances``, ``budget``); a race stopped before its end is not done.
    """

    losses: np.ndarray
    mask: np.ndarray
    alive: np.ndarray
    round: int = 0
    n_trainings: int = 0
    records: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    path: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    removed_counts: list[int] = dataclasses.field(default_factory=list)
    compile_seconds: float = 0.0
    train_seconds: float = 0.0
    done: bool = False
    stop_reason: str = ""

    @classmethod
    def new(cls, n_models: int, max_instances: int) -> RaceState:
        return cls(
            np.full((n_models, max_instances), np.nan),
            np.zeros((n_models, max_instances), bool),
            np.ones(n_models, bool),
        )

    # ------------------------------------------------------------------ the steps of a round
    def plan(self, settings: RaceSettings) -> Work | None:
        """The next round's instances, or ``None`` (with ``stop_reason`` set) when the race
        cannot go on: every survivor has ``max_instances``, or the round would pass the budget.

        The first round trains ``warmup`` instances of every model; later rounds
        ``instances_per_round`` more of every survivor (``"auto"``: as many as keep the round as
        wide as the warm-up, at least 1).
        """
        alive_ids = np.flatnonzero(self.alive)
        counts = self.mask.sum(axis=1)
        if self.round == 0:
            per_model = settings.warmup_for()
        elif settings.instances_per_round == "auto":
            per_model = max(1, len(self.alive) // len(alive_ids))
        else:
            per_model = int(settings.instances_per_round)
        starts = counts[alive_ids]
        stops = np.minimum(starts + per_model, settings.max_instances)
        models = np.repeat(alive_ids, stops - starts)
        instances = np.concatenate(
            [np.arange(a, b) for a, b in zip(starts, stops, strict=True)] or [np.zeros(0, int)]
        )
        if not len(models):
            self.done, self.stop_reason = True, "max_instances"
            return None
        if settings.budget is not None and self.n_trainings + len(models) > settings.budget:
            self.done, self.stop_reason = True, "budget"
            return None
        return Work(models.astype(np.int64), instances.astype(np.int64))

    def record(self, work: Work, outcome: Outcome) -> None:
        """Enter a round's losses into the tables and the ledger (failures as +inf)."""
        losses = np.asarray(outcome.losses, np.float64).reshape(-1)
        ok = np.asarray(outcome.ok, bool).reshape(-1) & np.isfinite(losses)
        losses = np.where(ok, losses, np.inf)
        self.round += 1
        self.losses[work.models, work.instances] = losses
        self.mask[work.models, work.instances] = True
        self.n_trainings += len(work.models)
        reference = self.losses[self.mask & np.isfinite(self.losses)]
        status = _statuses(losses, ok, reference)
        share = outcome.seconds / max(len(work.models), 1)
        for j, (m, i) in enumerate(zip(work.models, work.instances, strict=True)):
            row = dict(
                model_id=int(m),
                instance=int(i),
                loss=float(losses[j]),
                status=str(status[j]),
                round=self.round,
                seconds=share,
            )
            row.update({k: float(v[j]) for k, v in outcome.metrics.items()})
            self.records.append(row)
        self.compile_seconds += outcome.compile_seconds
        self.train_seconds += outcome.seconds
        self.history.append(
            dict(
                round=self.round,
                trained=len(work.models),
                seconds=float(outcome.seconds),
                compile_seconds=float(outcome.compile_seconds),
                instance_steps=int(outcome.instance_steps),
            )
        )

    def apply_rule(
        self, rule: Rule, statistic: Statistic, rank_by: Statistic, settings: RaceSettings
    ) -> np.ndarray:
        """Remove the models the rule rejects (never more than leaves ``n_winners``), add the
        round's path and history rows, and decide whether the race is done. Returns the ids
        removed."""
        alive_ids = np.flatnonzero(self.alive)
        n_min = int(self.mask[alive_ids].sum(axis=1).min())
        before = self.alive.copy()
        warmup = settings.warmup_for(rule)
        new_alive = rule.select(self.losses, self.mask, before, n_min, warmup, statistic, rank_by)
        new_alive = np.asarray(new_alive, bool) & before
        keep = min(settings.n_winners, int(before.sum()))
        if new_alive.sum() < keep:
            best = best_models(statistic, rank_by, self.losses, self.mask, before, keep)
            new_alive[best] = True
        eliminated = np.flatnonzero(before & ~new_alive)
        self.alive = new_alive
        if n_min > warmup:
            self.removed_counts.append(len(eliminated))
        stat_values, rank_values = (
            statistic(self.losses, self.mask),
            rank_by(self.losses, self.mask),
        )
        for m in alive_ids:
            self.path.append(
                dict(
                    round=self.round,
                    model_id=int(m),
                    statistic=float(stat_values[m]),
                    rank=float(rank_values[m]),
                    instances=int(self.mask[m].sum()),
                    alive=bool(new_alive[m]),
                )
            )
        self.history[-1].update(
            instances_per_model=n_min,
            survivors=int(before.sum()),
            eliminated=[int(e) for e in eliminated],
            remaining=int(new_alive.sum()),
        )
        if new_alive.sum() <= settings.n_winners:
            self.done, self.stop_reason = True, "winners"
        elif rule.should_stop(self.removed_counts):
            self.done, self.stop_reason = True, "patience"
        return eliminated

    def progress_info(self) -> dict[str, Any]:
        """The facts of the last round, as the race's ``progress`` callback receives them."""
        last = self.history[-1]
        return dict(
            round=self.round,
            survivors=int(self.alive.sum()),
            models=len(self.alive),
            trained=last["trained"],
            n_trainings=self.n_trainings,
            seconds=last["seconds"],
            compile_seconds=last["compile_seconds"],
            instance_steps=last["instance_steps"],
            eliminated=len(last["eliminated"]),
            instances_per_model=last["instances_per_model"],
            done=self.done,
        )

    # ------------------------------------------------------------------ the result
    def to_result(
        self,
        models: pd.DataFrame,
        settings: RaceSettings,
        statistic: Statistic,
        rank_by: Statistic,
        *,
        configs: list[ModelConfig] | None = None,
        timing: dict[str, Any] | None = None,
    ) -> SelectionResult:
        """The ``SelectionResult`` of this state (``timing["finished"]`` is False while the
        race is not done)."""
        n = min(settings.n_winners, int(self.alive.sum()))
        winners = best_models(statistic, rank_by, self.losses, self.mask, self.alive, n)
        ledger = pd.DataFrame(self.records)
        if len(ledger):
            ledger = ledger.sort_values(["model_id", "instance"], kind="stable")
            ledger = ledger.reset_index(drop=True)
        else:
            ledger = pd.DataFrame(columns=["model_id", "instance", "loss", "status", "round"])
        return SelectionResult(
            winner=configs[int(winners[0])] if configs is not None else None,
            winner_id=int(winners[0]),
            winners=[int(w) for w in winners],
            ledger=ledger,
            history=pd.DataFrame(self.history),
            path=pd.DataFrame(self.path),
            models=models,
            n_trainings=self.n_trainings,
            timing=dict(
                compile_seconds=self.compile_seconds,
                train_seconds=self.train_seconds,
                wall_seconds=self.compile_seconds + self.train_seconds,
                stop_reason=self.stop_reason,
                finished=self.done,
                **(timing or {}),
            ),
            settings=settings.describe(),
            configs=configs,
        )

    # ------------------------------------------------------------------ checkpoints
    def save(self, path: str | os.PathLike, fingerprint: str) -> None:
        """Write the state atomically (a temporary file, flushed to disk, then renamed): a
        failure at any point, a full disk included, leaves the previous checkpoint intact."""
        path = Path(path)
        meta = {
            "format": CHECKPOINT_FORMAT,
            "jrobust_version": __version__,
            "fingerprint": fingerprint,
            **{f: getattr(self, f) for f in _META_FIELDS},
        }
        arrays = {"losses": self.losses, "mask": self.mask, "alive": self.alive}
        arrays |= _columns("ledger", self.records) | _columns("path", self.path)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        write_atomic(path, lambda fh: np.savez(fh, **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike, fingerprint: str | None = None) -> RaceState:
        """Read a checkpoint (data only, never pickle), checking its fingerprint first.

        Raises:
          CheckpointMismatch: the checkpoint belongs to another race or format.
          CheckpointError: the file is not a readable checkpoint.
        """
        path = Path(path)
        _check_zip(path)
        try:
            with np.load(path, allow_pickle=False) as f:
                meta = json.loads(bytes(f["meta"]).decode())
                _check_meta(meta, path, fingerprint)
                arrays = {k: f[k] for k in f.files if k != "meta"}
        except (CheckpointMismatch, CheckpointError):
            raise
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as err:
            raise CheckpointError(
                f"cannot read the checkpoint {path} ({type(err).__name__}: {err}); it is damaged: "
                "delete it to start the race afresh"
            ) from None
        fields = {f: meta[f] for f in _META_FIELDS}
        return cls(
            losses=arrays["losses"].astype(np.float64),
            mask=arrays["mask"].astype(bool),
            alive=arrays["alive"].astype(bool),
            records=_rows("ledger", arrays),
            path=_rows("path", arrays),
            **fields,
        )

    @staticmethod
    def peek(path: str | os.PathLike) -> dict[str, Any]:
        """The JSON facts of a checkpoint (round, trainings, done, ...) without its tables."""
        _check_zip(Path(path))
        try:
            with np.load(Path(path), allow_pickle=False) as f:
                return json.loads(bytes(f["meta"]).decode())
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as err:
            raise CheckpointError(f"cannot read the checkpoint {path}: {err}") from None


_META_FIELDS = (
    "round",
    "n_trainings",
    "history",
    "removed_counts",
    "compile_seconds",
    "train_seconds",
    "done",
    "stop_reason",
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


def _check_meta(meta: dict, path: Path, fingerprint: str | None) -> None:
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointMismatch(
            f"the checkpoint {path} has format {meta.get('format')!r}, this jrobust reads format "
            f"{CHECKPOINT_FORMAT}; start the race afresh in a new folder"
        )
    if fingerprint is not None and meta.get("fingerprint") != fingerprint:
        raise CheckpointMismatch(
            f"the checkpoint {path} belongs to a different race (another space, data, settings or "
            "jrobust version); resume with exactly the same arguments, or use a new checkpoint_dir"
        )


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


def _columns(prefix: str, rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    if not rows:
        return {}
    frame = pd.DataFrame(rows)
    out = {}
    for col in frame.columns:
        values = frame[col].to_numpy()
        out[f"{prefix}.{col}"] = values.astype(str) if values.dtype == object else values
    return out


def _rows(prefix: str, arrays: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    cols = {k[len(prefix) + 1 :]: v for k, v in arrays.items() if k.startswith(prefix + ".")}
    if not cols:
        return []
    frame = pd.DataFrame(cols)
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# A user's evaluator: losses for the work list, in its order.
Evaluator = Callable[[np.ndarray, np.ndarray], np.ndarray]
