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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from jrobust._atomic import write_atomic
from jrobust._version import __version__
from jrobust.config import ModelConfig
from jrobust.result import SelectionResult, stage_firsts
from jrobust.rules import Rule
from jrobust.settings import RaceSettings
from jrobust.stats import Statistic, get_statistic

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
    "DOMINANCE_STATISTICS",
    "best_models",
    "dominance_message",
    "dominance_values",
    "final_order",
    "n_stages",
    "stage_target",
    "transform_table",
    "belongs_to",
    "fingerprint",
    "ledger_rows",
    "race_fingerprint",
    "refuse_legacy",
]

CHECKPOINT_FILE = "checkpoint.npz"
LEGACY_CHECKPOINT_FILE = "checkpoint.pkl"
CHECKPOINT_FORMAT = 2

#: An instance is ``diverged`` when its loss is finite but at least ``DIVERGED_LOSS``, or above
#: the median of every finite loss in the ledger so far by more than ``DIVERGED_FACTOR`` times
#: their median magnitude (for positive losses: about ``DIVERGED_FACTOR`` times the median).
#: Divergence is a loss far *above* the others: a low or negative loss never is. Its loss still
#: counts in the statistics: divergence is non-robustness, and the statistics should see it.
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
    transformed: np.ndarray | None = None  # (W, T): the loss on each transformed test set
    pairs: tuple[tuple[str, float], ...] | None = None  # the T (transform, param) of the columns


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
      configs: the models (``None`` for a bare model count with an evaluator).
      n_models: the number of models (counts when ``configs`` is ``None``).
      data_fingerprint: ``Population.fingerprint()`` of the data (``None`` with an evaluator).
      version: the jrobust version that wrote the checkpoint.

    Returns:
      A hex string.
    """
    return fingerprint(
        [
            version,
            settings.identity(),
            [c.full_repr() for c in configs] if configs is not None else n_models,
            data_fingerprint,
        ]
    )


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


#: The statistics of the dominance guarantee: no model wins while another survivor is strictly
#: better on all three of them.
DOMINANCE_STATISTICS = ("mean", "std", "pd")


def dominance_values(losses: np.ndarray, mask: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """``(3, len(ids))``: the mean, std and PD of the models ``ids`` over the ``mask``."""
    ids = np.asarray(ids, np.int64)
    return np.stack([get_statistic(n)(losses[ids], mask[ids]) for n in DOMINANCE_STATISTICS])


def final_order(
    statistic: Statistic,
    rank_by: Statistic,
    losses: np.ndarray,
    mask: np.ndarray,
    alive: np.ndarray,
) -> tuple[np.ndarray, dict[str, Any] | None]:
    """Every alive model, best first, with the dominance guarantee; and its note (or ``None``).

    The order is ``rank_by``'s (ties: ``statistic``, then the lower id), except that the first
    place goes to the best model by ``rank_by`` that no other alive model *dominates* (is
    strictly better than on mean, std and PD at once, ``DOMINANCE_STATISTICS``). Strict
    dominance is a strict partial order, so such a model always exists. When the ``rank_by``
    first is dominated, the note names it (``crowned``), the models that dominate it
    (``dominated_by``), the new first (``winner``) and the three statistics of each.

    Example:
      >>> import numpy as np
      >>> from jrobust.stats import get_statistic
      >>> x = np.array([[0.0345, 0.0347, 0.0349, 0.035, 0.035, 0.035, 0.0352, 0.0355, 0.044, 0.073],
      ...               [0.0325, 0.033, 0.0345, 0.0346, 0.0347, 0.0363, 0.0365, 0.0386, 0.0394, 0.0399]])
      >>> q = get_statistic("q3+iqr")
      >>> order, note = final_order(q, q, x, np.ones_like(x, bool), np.ones(2, bool))
      >>> order.tolist(), note["crowned"], note["dominated_by"]
      ([1, 0], 0, [1])
    """
    order = best_models(statistic, rank_by, losses, mask, alive, int(np.sum(alive)))
    if len(order) < 2:
        return order, None
    values = dominance_values(losses, mask, order)  # (3, k)
    beats = (values[:, :, None] < values[:, None, :]).all(axis=0)  # beats[a, b]: a dominates b
    dominated = beats.any(axis=0)
    if not dominated[0]:
        return order, None
    first = int(np.flatnonzero(~dominated)[0])
    new_order = np.concatenate([order[[first]], np.delete(order, first)])
    shown = {
        int(order[0]),
        int(order[first]),
        *(int(order[a]) for a in np.flatnonzero(beats[:, 0])),
    }
    where = {int(m): j for j, m in enumerate(order)}
    note = dict(
        crowned=int(order[0]),
        winner=int(order[first]),
        rank_by=rank_by.name,
        dominated_by=[int(order[a]) for a in np.flatnonzero(beats[:, 0])],
        values={
            str(m): {n: float(values[k, where[m]]) for k, n in enumerate(DOMINANCE_STATISTICS)}
            for m in sorted(shown)
        },
    )
    return new_order, note


def dominance_message(
    note: Mapping[str, Any] | None, names: Mapping[int, str] | None = None
) -> str:
    """One sentence for a dominance note of ``final_order`` (``""`` for ``None``).

    Example:
      >>> note = dict(crowned=3, winner=5, rank_by="q3+iqr", dominated_by=[5], values={
      ...     "3": dict(mean=0.0397, std=0.012, pd=0.038),
      ...     "5": dict(mean=0.036, std=0.0026, pd=0.0065)})
      >>> print(dominance_message(note))
      model 3 was ranked first by q3+iqr but model 5 is better on mean, std and PD
      (mean 0.036 < 0.0397, std 0.0026 < 0.012, PD 0.0065 < 0.038), so model 5 wins
    """
    if not note:
        return ""
    names = names or {}

    def label(m: int) -> str:
        name = names.get(int(m))
        return f"model {m}" + (f" ({name})" if name else "")

    crowned, winner = int(note["crowned"]), int(note["winner"])
    beaters = [int(m) for m in note["dominated_by"]]
    values = note.get("values", {})
    best = winner if winner in beaters else beaters[0]
    v, w = values.get(str(best)), values.get(str(crowned))
    numbers = (
        " ("
        + ", ".join(
            f"{'PD' if k == 'pd' else k} {float(v[k]):.3g} < {float(w[k]):.3g}"
            for k in DOMINANCE_STATISTICS
        )
        + ")"
        if v and w
        else ""
    )
    who = " and ".join(label(m) for m in beaters[:3]) + (" and others" if len(beaters) > 3 else "")
    verb = "is" if len(beaters) == 1 else "are"
    text = (
        f"{label(crowned)} was ranked first by {note['rank_by']} but {who} {verb} better on "
        f"mean, std and PD{numbers}"
    )
    if winner in beaters:
        return text + f", so {label(winner)} wins"
    return (
        text + f"; {label(winner)}, the best survivor by {note['rank_by']} that no other "
        "survivor beats on all three, wins"
    )


def transform_table(
    tlosses: np.ndarray, mask: np.ndarray, over: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(losses, mask)`` over transformed test sets (``over``: ``"transforms"`` or ``"both"``)
    from ``tlosses`` ``(M, N, T)`` and the instances' ``mask`` ``(M, N)``; see
    ``RaceState.table``.

    Example:
      >>> t = np.arange(8.0).reshape(1, 2, 4)
      >>> transform_table(t, np.array([[True, True]]), "transforms")[0]
      array([[2., 3., 4., 5.]])
    """
    m, n, n_t = tlosses.shape
    if over == "both":
        return tlosses.reshape(m, n * n_t), np.repeat(mask, n_t, axis=1)
    if over != "transforms":
        raise ValueError(f"over must be 'transforms' or 'both' here, got {over!r}")
    counts = mask.sum(axis=1)
    inside = mask[:, :, None] & np.isfinite(tlosses)
    failed = (mask[:, :, None] & ~np.isfinite(tlosses)).any(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(inside, tlosses, 0.0).sum(axis=1) / counts[:, None]
    out = np.where(failed, np.inf, mean)
    out = np.where(counts[:, None] > 0, out, np.nan)
    return out, np.repeat((counts > 0)[:, None], n_t, axis=1)


def _statuses(losses: np.ndarray, ok: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``failed`` (not finite or not ok), ``diverged`` (far *above* the reference losses: a
    loss is never too good, and losses may be negative), else ``ok``."""
    finite = np.isfinite(losses) & ok
    center = np.median(reference) if reference.size else 0.0
    scale = np.median(np.abs(reference)) if reference.size else 0.0
    value = np.where(finite, losses, 0.0)
    far = (scale > 0) & (value - center > DIVERGED_FACTOR * scale)
    diverged = finite & ((value >= DIVERGED_LOSS) | far)
    return np.where(~finite, "failed", np.where(diverged, "diverged", "ok"))


def ledger_rows(
    keys: Mapping[str, np.ndarray],
    losses: np.ndarray,
    ok: np.ndarray,
    reference: np.ndarray,
    *,
    extra: Mapping[str, Any] | None = None,
    metrics: Mapping[str, np.ndarray] | None = None,
    transformed: np.ndarray | None = None,
    pairs: Sequence[Sequence[Any]] = (),
) -> list[dict[str, Any]]:
    """The ledger rows of ``W`` trained instances, as a race's ledger and ``train_instances``
    have them.

    Each instance has its row: ``keys`` (e.g. ``model_id``, ``instance``), ``loss`` (+inf when
    failed), ``status`` (``ok``, ``diverged`` against ``reference``, or ``failed``), ``extra``
    and the test ``metrics``. With ``transformed`` losses ``(W, T)`` that row gets
    ``transform="none"`` and ``param`` NaN, and is followed by one row per ``pairs[t] = (name,
    param)`` with that loss and status, NaN metrics (they describe the untransformed test set)
    and ``seconds`` 0 (the instance's time is on its own row).

    Args:
      keys, extra: columns of one value per instance (an array of ``W``) or one for all.
      losses, ok: ``(W,)`` the test losses and which instances trained (failed ones are +inf).
      reference: the finite losses that divergence is judged against (``DIVERGED_FACTOR``).
      metrics: ``name -> (W,)`` further test metrics.
      transformed: ``(W, T)`` the losses on the transformed test sets (failures +inf), or
        ``None``; pairs: their ``T`` ``(transform, param)``.

    Returns:
      A list of row dicts (plain Python values).

    Example:
      >>> rows = ledger_rows({"instance": np.array([0, 1])}, np.array([0.5, np.inf]),
      ...                    np.array([True, False]), np.array([0.5]))
      >>> [(r["instance"], r["status"]) for r in rows]
      [(0, 'ok'), (1, 'failed')]
    """
    losses = np.asarray(losses, np.float64).reshape(-1)
    status = _statuses(losses, np.asarray(ok, bool).reshape(-1), reference)
    metrics = dict(metrics or {})
    columns = {**keys, **(extra or {})}
    rows = []
    for j in range(len(losses)):
        value = {k: _plain(v[j]) if np.ndim(v) else _plain(v) for k, v in columns.items()}
        row = {k: value[k] for k in keys}
        row.update(loss=float(losses[j]), status=str(status[j]))
        row.update({k: value[k] for k in (extra or {})})
        row.update({k: float(v[j]) for k, v in metrics.items()})
        if transformed is None:
            rows.append(row)
            continue
        row.update(transform="none", param=float("nan"))
        rows.append(row)
        values = np.asarray(transformed[j], np.float64)
        tstatus = _statuses(values, np.isfinite(values), reference)
        blank = {k: float("nan") for k in metrics}
        for t, (name, param) in enumerate(pairs):
            rows.append(
                dict(
                    row,
                    **blank,
                    loss=float(values[t]),
                    status=str(tstatus[t]),
                    transform=str(name),
                    param=float(param),
                    **({"seconds": 0.0} if "seconds" in row else {}),
                )
            )
    return rows


def _statistics(settings: RaceSettings) -> tuple[Statistic, Statistic]:
    statistic = get_statistic(settings.statistic)
    return statistic, (
        get_statistic(settings.rank_by) if settings.rank_by is not None else statistic
    )


def n_stages(settings: RaceSettings) -> int:
    """The racing stages of a race: one per fidelity size (one without ``fidelity``)."""
    return len(settings.fidelity) if settings.fidelity else 1


def stage_target(settings: RaceSettings, n_models: int, stage: int) -> int:
    """The survivors at which racing stage ``stage`` (of ``S``, not the last) ends:
    ``ceil(M (W / M) ** ((stage + 1) / S))`` with ``M = n_models``, ``W = n_winners``: every
    stage keeps the same fraction ``(W / M) ** (1 / S)`` of the models.

    Example:
      >>> from jrobust.settings import RaceSettings
      >>> s = RaceSettings(fidelity=(500, 2000, 8000, 32000))
      >>> [stage_target(s, 64, k) for k in range(3)]
      [23, 8, 3]
    """
    m, w, total = n_models, min(settings.n_winners, n_models), n_stages(settings)
    return int(np.ceil(m * (w / m) ** ((stage + 1) / total) - 1e-9))


@dataclasses.dataclass
class RaceState:
    """Everything a race has learned so far; ``save``/``load`` make it a checkpoint.

    Attributes:
      losses: ``(M, N)`` float64 instance losses (NaN: not trained, +inf: failed); ``N`` grows
        when a stage or the final race opens fresh instance columns.
      mask: ``(M, N)`` bool, True where an instance is trained.
      alive: ``(M,)`` bool, the models still racing.
      round: rounds completed; n_trainings: instances trained.
      records, history, path: rows of the ledger, history and path tables.
      removed_counts: models removed by each elimination of the current stage (for the
        patience stop).
      compile_seconds, train_seconds: summed over the rounds.
      done, stop_reason: whether and why the race ended (``winners``, ``patience``,
        ``max_instances``, ``budget``); a race stopped before its end is not done. A final race
        keeps the reason its racing stages ended with.
      stage: the current stage: ``0 .. S - 1`` the racing stages (one per fidelity size), ``S``
        the final race; stage_start: its first instance column; stage_round: its rounds done;
        stage_models: the models alive when it began.
      elites: the models protected in the next round (the best ``elites`` by ``rank_by``).
      stages: one dict per stage entered (``stage``, ``kind`` ``"race"``/``"final"``,
        ``train_size``, ``first_instance``, ``first_round``, ``last_round``, ``models``,
        ``survivors``, ``end``).
      tlosses: ``(M, N, T)`` float64, the losses on the population's ``T`` transformed test
        sets (``None`` without transformations); transform_pairs: their ``(name, param)``.
      data_fingerprint: the data's part of the race's fingerprint (``race_fingerprint``), kept
        so that a run folder's checkpoint can be checked against its ``config.toml`` without
        loading the data.
      own_sizes: ``(M,)`` each model's own ``train_size`` (for the ledger; not saved).
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
    stage: int = 0
    stage_start: int = 0
    stage_round: int = 0
    stage_models: int = 0
    elites: list[int] = dataclasses.field(default_factory=list)
    stages: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    tlosses: np.ndarray | None = None
    transform_pairs: list[list[Any]] = dataclasses.field(default_factory=list)
    data_fingerprint: str | None = None
    own_sizes: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.stage_models:
            self.stage_models = len(self.alive)
        if not self.stages:
            self.stages = [_stage_entry(0, "race", 0, 1, len(self.alive))]

    @classmethod
    def new(cls, n_models: int, max_instances: int) -> RaceState:
        return cls(
            np.full((n_models, max_instances), np.nan),
            np.zeros((n_models, max_instances), bool),
            np.ones(n_models, bool),
        )

    # ------------------------------------------------------------------ stages
    @property
    def stage_kind(self) -> str:
        """``"race"`` in a racing stage, ``"final"`` in the final race."""
        return self.stages[-1]["kind"]

    def stage_size(self, settings: RaceSettings) -> int | None:
        """The training size of the current stage (``None``: each model's own)."""
        if not settings.fidelity:
            return None
        return int(settings.fidelity[min(self.stage, len(settings.fidelity) - 1)])

    def stage_mask(self) -> np.ndarray:
        """The mask of the current stage's instances only (its rules and statistics see these)."""
        return self._columns(len(self.stages) - 1)

    def ranking_mask(self) -> np.ndarray:
        """The instances the final ranking uses: the latest stage in which the alive models have
        trained instances (the final race's fresh instances once it has run)."""
        for k in reversed(range(len(self.stages))):
            mask = self._columns(k)
            if mask[self.alive].any():
                return mask
        return self.mask

    def table(self, mask: np.ndarray, settings: RaceSettings) -> tuple[np.ndarray, np.ndarray]:
        """``(losses, mask)`` of the ``mask``'s instances as the statistics see them
        (``settings.over``): ``(M, N)`` per instance; ``(M, T)`` per transformation parameter,
        the mean over the instances (+inf when one of them failed); ``(M, N * T)`` per
        (instance, parameter), column ``n * T + t``."""
        over = settings.over
        if over == "instances":
            return self.losses, mask
        if self.tlosses is None:
            raise ValueError(
                f"over={over!r} takes the statistics over transformed test sets, but this race "
                "has none: train on jrobust.data.with_transforms(population, rotation=[...]) "
                "or have the evaluator return (losses, transformed_losses)"
            )
        return transform_table(self.tlosses, mask, over)

    def _columns(self, k: int) -> np.ndarray:
        lo = int(self.stages[k]["first_instance"])
        hi = int(self.stages[k + 1]["first_instance"]) if k + 1 < len(self.stages) else None
        out = np.zeros_like(self.mask)
        out[:, lo:hi] = self.mask[:, lo:hi]
        return out

    def _ensure_columns(self, width: int) -> None:
        extra = width - self.losses.shape[1]
        if extra > 0:
            n = len(self.alive)
            self.losses = np.concatenate([self.losses, np.full((n, extra), np.nan)], axis=1)
            self.mask = np.concatenate([self.mask, np.zeros((n, extra), bool)], axis=1)
            if self.tlosses is not None:
                pad = np.full((n, extra, self.tlosses.shape[2]), np.nan)
                self.tlosses = np.concatenate([self.tlosses, pad], axis=1)

    def _begin_stage(self, stage: int, kind: str) -> None:
        trained = np.flatnonzero(self.mask.any(axis=0))
        start = int(trained.max()) + 1 if len(trained) else 0  # beyond every instance so far
        self.stage, self.stage_start, self.stage_round = stage, start, 0
        self.stage_models = int(self.alive.sum())
        self.removed_counts, self.elites = [], []
        self.stages.append(_stage_entry(stage, kind, start, self.round + 1, self.stage_models))

    def _end_stage(self, settings: RaceSettings, reason: str) -> None:
        """The current stage is over (``reason``): open the next racing stage, the final race,
        or end the race."""
        entry = self.stages[-1]
        entry.update(end=reason, last_round=self.round, survivors=int(self.alive.sum()))
        if entry["kind"] == "final":
            self.done = True
            return
        total, n = n_stages(settings), int(self.alive.sum())
        final = settings.n_winners > 1 and settings.final_instances > 0 and n >= 2
        if self.stage < total - 1:
            if n > settings.n_winners:
                self._begin_stage(self.stage + 1, "race")
                return
            if not final:  # the few left are still judged at the last size
                self._begin_stage(total - 1, "race")
                return
        self.stop_reason = reason
        if not final:
            self.done = True
            return
        if n > settings.n_winners:  # the finalists: the best n_winners survivors
            statistic, rank_by = _statistics(settings)
            table, mask = self.table(self.stage_mask(), settings)
            best = best_models(statistic, rank_by, table, mask, self.alive, settings.n_winners)
            cut = np.flatnonzero(self.alive & ~np.isin(np.arange(len(self.alive)), best))
            self.alive[cut] = False
            if self.history:
                last = self.history[-1]
                last["eliminated"] = [*last.get("eliminated", []), *(int(m) for m in cut)]
                last["remaining"] = int(self.alive.sum())
            for row in self.path:
                if row["round"] == self.round and row["model_id"] in set(cut.tolist()):
                    row["alive"] = False
            entry["survivors"] = int(self.alive.sum())
        self._begin_stage(total, "final")

    # ------------------------------------------------------------------ the steps of a round
    def plan(self, settings: RaceSettings) -> Work | None:
        """The next round's instances, or ``None`` (with ``done`` and ``stop_reason`` set) when
        the race is over: the last stage ended (``max_instances``, patience, ``n_winners``) and
        the final race, if any, has run, or the next round would pass the budget.

        The first round of a stage trains ``warmup`` instances of every model racing in it;
        later rounds ``instances_per_round`` more of every survivor (``"auto"``: as many as keep
        the round as wide as the stage's first elimination rounds, ``models_in_stage //
        survivors``, at least 1), up to ``max_instances`` per model and stage. The final race
        is one round of ``final_instances`` fresh instances per finalist. A stage's instances
        are fresh: their indices start beyond every instance trained before it.
        """
        while not self.done:
            work = self._next_round(settings)
            if work is not None or self.done:
                return work
            self._end_stage(settings, "max_instances")
        return None

    def _next_round(self, settings: RaceSettings) -> Work | None:
        alive_ids = np.flatnonzero(self.alive)
        counts = self.stage_mask()[alive_ids].sum(axis=1)
        final = self.stage_kind == "final"
        if final:
            if self.stage_round:
                return None
            per_model = int(settings.final_instances)
        elif self.stage_round == 0:
            per_model = settings.warmup_for()
        elif settings.instances_per_round == "auto":
            per_model = max(1, self.stage_models // len(alive_ids))
        else:
            per_model = int(settings.instances_per_round)
        stops = counts + per_model
        if not final:
            stops = np.minimum(stops, settings.max_instances)
        models = np.repeat(alive_ids, stops - counts)
        if not len(models):
            return None
        instances = self.stage_start + np.concatenate(
            [np.arange(a, b) for a, b in zip(counts, stops, strict=True)]
        )
        if settings.budget is not None and self.n_trainings + len(models) > settings.budget:
            self.done, self.stop_reason = True, "budget"
            if self.stages[-1]["end"] == "":
                self.stages[-1].update(end="budget", last_round=self.round)
            return None
        size = self.stage_size(settings)
        sizes = None if size is None else np.full(len(models), size, np.int64)
        return Work(models.astype(np.int64), instances.astype(np.int64), sizes)

    def _sizes_of(self, work: Work) -> np.ndarray:
        if work.train_size is not None:
            return np.asarray(work.train_size, np.int64)
        if self.own_sizes is not None:
            return np.asarray(self.own_sizes, np.int64)[work.models]
        return np.zeros(len(work.models), np.int64)  # an evaluator's own sizes: unknown

    def record(self, work: Work, outcome: Outcome) -> None:
        """Enter a round's losses into the tables and the ledger (failures as +inf)."""
        losses = np.asarray(outcome.losses, np.float64).reshape(-1)
        ok = np.asarray(outcome.ok, bool).reshape(-1) & np.isfinite(losses)
        losses = np.where(ok, losses, np.inf)
        self.round += 1
        self.stage_round += 1
        if len(work.instances):
            self._ensure_columns(int(np.max(work.instances)) + 1)
        self.losses[work.models, work.instances] = losses
        self.mask[work.models, work.instances] = True
        self.n_trainings += len(work.models)
        reference = self.losses[self.mask & np.isfinite(self.losses)]
        transformed = self._record_transformed(work, outcome, ok)
        share = outcome.seconds / max(len(work.models), 1)
        sizes = self._sizes_of(work)
        kind, number = self.stage_kind, int(self.stages[-1]["stage"])
        self.records += ledger_rows(
            {"model_id": work.models, "instance": work.instances},
            losses,
            ok,
            reference,
            extra={
                "round": self.round,
                "stage": number,
                "stage_kind": kind,
                "train_size": sizes,
                "seconds": share,
            },
            metrics=outcome.metrics,
            transformed=transformed,
            pairs=self.transform_pairs,
        )
        self.compile_seconds += outcome.compile_seconds
        self.train_seconds += outcome.seconds
        size = int(sizes[0]) if len(sizes) and (sizes == sizes[0]).all() else 0
        if self.stages[-1]["train_size"] is None:
            self.stages[-1]["train_size"] = size
        self.history.append(
            dict(
                round=self.round,
                stage=number,
                stage_kind=kind,
                train_size=size,
                trained=len(work.models),
                seconds=float(outcome.seconds),
                compile_seconds=float(outcome.compile_seconds),
                instance_steps=int(outcome.instance_steps),
            )
        )

    def _record_transformed(self, work: Work, outcome: Outcome, ok: np.ndarray):
        """Enter the transformed losses ``(W, T)`` of a round (failures as +inf), or ``None``."""
        if outcome.transformed is None:
            if self.tlosses is not None and len(work.models):
                raise ValueError(
                    "this race's earlier rounds had transformed losses, this one has none: an "
                    "evaluator must return (losses, transformed_losses) in every round"
                )
            return None
        values = np.asarray(outcome.transformed, np.float64)
        if values.ndim != 2 or values.shape[0] != len(work.models):
            raise ValueError(
                f"transformed losses must have shape (instances, transforms) = "
                f"({len(work.models)}, T), got {values.shape}"
            )
        n_t = values.shape[1]
        pairs = [list(p) for p in (outcome.pairs or [("custom", float(t)) for t in range(n_t)])]
        if self.tlosses is None:
            m, n = self.losses.shape
            self.tlosses = np.full((m, n, n_t), np.nan)
            self.transform_pairs = pairs
        elif self.tlosses.shape[2] != n_t:
            raise ValueError(
                f"this race has {self.tlosses.shape[2]} transformed test sets, a round returned "
                f"{n_t}; every round must evaluate the same transformations"
            )
        values = np.where(ok[:, None] & np.isfinite(values), values, np.inf)
        self.tlosses[work.models, work.instances] = values
        return values

    def apply_rule(
        self, rule: Rule, statistic: Statistic, rank_by: Statistic, settings: RaceSettings
    ) -> np.ndarray:
        """Remove the models the rule rejects on the current stage's instances (never an elite
        of the round, never more than leaves ``n_winners``), add the round's path and history
        rows, and decide whether the stage (and the race) is over. In the final race nothing is
        removed: the finalists are ordered by ``to_result``. Returns the ids removed."""
        alive_ids = np.flatnonzero(self.alive)
        smask = self.stage_mask()
        n_min = int(smask[alive_ids].sum(axis=1).min())
        before = self.alive.copy()
        final = self.stage_kind == "final"
        warmup = settings.warmup_for(rule)
        acted = not final and n_min > warmup
        pvalues, protected, rescued = None, [], []
        table, tmask = self.table(smask, settings)
        if final:
            new_alive = before.copy()
        else:
            new_alive = rule.select(table, tmask, before, n_min, warmup, statistic, rank_by)
            new_alive = np.asarray(new_alive, bool) & before
            if acted and callable(getattr(rule, "pvalues", None)):
                pvalues = rule.pvalues(table, tmask, before, statistic, rank_by)
            if acted and settings.elites:
                limit = min(int(settings.elites), int(before.sum()) - 1)
                protected = [int(e) for e in self.elites if before[e]][:limit]
                rescued = [e for e in protected if not new_alive[e]]
                new_alive[protected] = True
            keep = min(settings.n_winners, int(before.sum()))
            if new_alive.sum() < keep:
                best = best_models(statistic, rank_by, table, tmask, before, keep)
                new_alive[best] = True
        eliminated = np.flatnonzero(before & ~new_alive)
        self.alive = new_alive
        if acted:
            self.removed_counts.append(len(eliminated))
        stat_values, rank_values = statistic(table, tmask), rank_by(table, tmask)
        size = self.history[-1]["train_size"] if self.history else 0
        for m in alive_ids:
            self.path.append(
                dict(
                    round=self.round,
                    stage=int(self.stages[-1]["stage"]),
                    stage_kind=self.stage_kind,
                    train_size=int(size),
                    model_id=int(m),
                    statistic=float(stat_values[m]),
                    rank=float(rank_values[m]),
                    instances=int(smask[m].sum()),
                    alive=bool(new_alive[m]),
                    elite=m in protected,
                    pvalue=float(pvalues.adjusted[m]) if pvalues is not None else float("nan"),
                    pvalue_raw=float(pvalues.raw[m]) if pvalues is not None else float("nan"),
                )
            )
        omnibus = pvalues.omnibus if pvalues is not None else None
        self.history[-1].update(
            instances_per_model=n_min,
            survivors=int(before.sum()),
            eliminated=[int(e) for e in eliminated],
            remaining=int(new_alive.sum()),
            elites=protected,
            rescued=rescued,
        )
        if omnibus is not None:  # the Friedman rule's omnibus test
            self.history[-1]["pvalue_omnibus"] = float(omnibus)
        n = int(new_alive.sum())
        if final:
            self._end_stage(settings, "final")
        elif n <= settings.n_winners:
            self._end_stage(settings, "winners")
        elif rule.should_stop(self.removed_counts):
            self._end_stage(settings, "patience")
        elif (
            acted
            and self.stage < n_stages(settings) - 1
            and n <= stage_target(settings, len(self.alive), self.stage)
        ):
            self._end_stage(settings, "target")
        if settings.elites and not self.done and self.stage_round:
            table, tmask = self.table(self.stage_mask(), settings)
            best = best_models(statistic, rank_by, table, tmask, self.alive, settings.elites)
            self.elites = [int(e) for e in best]
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
            stage=int(last.get("stage", 0)),
            stage_kind=last.get("stage_kind", "race"),
            train_size=last.get("train_size", 0),
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
        race is not done).

        The survivors are ranked on the instances of the latest stage they raced in (the final
        race's fresh instances once it has run) by ``rank_by``, with the dominance guarantee of
        ``final_order``: no model comes first while another survivor is strictly better on mean,
        std and PD; ``result.dominance`` says when that changed the winner.
        """
        n = min(settings.n_winners, int(self.alive.sum()))
        table, mask = self.table(self.ranking_mask(), settings)
        order, note = final_order(statistic, rank_by, table, mask, self.alive)
        winners = order[:n]
        ledger = pd.DataFrame(self.records)
        if len(ledger):
            ledger = ledger.sort_values(["model_id", "instance"], kind="stable")
            ledger = ledger.reset_index(drop=True)
        else:
            ledger = pd.DataFrame(
                columns=[
                    "model_id",
                    "instance",
                    "loss",
                    "status",
                    "round",
                    "stage",
                    "stage_kind",
                    "train_size",
                ]  # fmt: skip
            )
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
            dominance=note,
            stages=[dict(s) for s in self.stages],
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
        if self.tlosses is not None:
            arrays["tlosses"] = self.tlosses
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
            _check_shapes(arrays)
            records = _rows("ledger", arrays)
            table_path = _rows("path", arrays)
            state_arrays = dict(
                losses=arrays["losses"].astype(np.float64),
                mask=arrays["mask"].astype(bool),
                alive=arrays["alive"].astype(bool),
                tlosses=arrays["tlosses"].astype(np.float64) if "tlosses" in arrays else None,
            )
        except (CheckpointMismatch, CheckpointError):
            raise
        except _Shape as err:
            raise CheckpointError(
                f"the checkpoint {path} is damaged (its arrays have the wrong shape: {err}): "
                "delete it to start the race afresh"
            ) from None
        except (
            OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, json.JSONDecodeError
        ) as err:  # fmt: skip
            raise CheckpointError(
                f"cannot read the checkpoint {path} ({type(err).__name__}: {err}); it is damaged: "
                "delete it to start the race afresh"
            ) from None
        if not isinstance(meta, dict):
            raise CheckpointError(
                f"the checkpoint {path} is damaged (its meta entry is not a table)"
            )
        fields = {f: meta.get(f, _META_DEFAULTS.get(f)) for f in _META_FIELDS}
        if fields["stage_round"] is None:
            fields["stage_round"] = fields["round"]
        for row in records:
            row.setdefault("stage", "race")
            row.setdefault("train_size", 0)
        # checkpoints of jrobust <= 0.2.0 kept the stage's kind ("race"/"final") in `stage`
        firsts = stage_firsts(fields["stages"])
        for rows in (records, table_path, fields["history"]):
            for row in rows:
                _stage_row(row, firsts)
        return cls(records=records, path=table_path, **state_arrays, **fields)

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
    "stage",
    "stage_start",
    "stage_round",
    "stage_models",
    "elites",
    "stages",
    "transform_pairs",
    "data_fingerprint",
)
# What a checkpoint written before stages existed stands for (one stage, from instance 0).
_META_DEFAULTS = {
    "stage": 0,
    "stage_start": 0,
    "stage_models": 0,
    "elites": [],
    "stages": [],
    "transform_pairs": [],
    "data_fingerprint": None,
}


def _stage_row(row: dict, firsts: list[tuple[int, int]]) -> None:
    """A row of an older checkpoint, whose ``stage`` held the kind: ``stage`` becomes the stage
    number (from the row's round) and ``stage_kind`` the kind."""
    if "stage_kind" in row or not isinstance(row.get("stage"), str):
        return
    row["stage_kind"] = row["stage"]
    number = 0
    for first, stage in firsts:
        if int(row.get("round", 0)) >= first:
            number = stage
    row["stage"] = number


def _stage_entry(stage: int, kind: str, first_instance: int, first_round: int, models: int):
    return dict(
        stage=stage,
        kind=kind,
        train_size=None,
        first_instance=first_instance,
        first_round=first_round,
        last_round=None,
        models=models,
        survivors=None,
        end="",
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


class _Shape(ValueError):
    """Arrays of a checkpoint whose shapes do not fit together."""


def _check_shapes(arrays: Mapping[str, np.ndarray]) -> None:
    """The tables of a checkpoint fit each other: ``losses`` ``(M, N)``, ``mask`` ``(M, N)``,
    ``alive`` ``(M,)``, ``tlosses`` ``(M, N, T)``, ledger and path columns of one length each,
    the ledger's models and instances inside the table (else ``_Shape``)."""
    missing = [k for k in ("losses", "mask", "alive") if k not in arrays]
    if missing:
        raise _Shape(f"no {', '.join(missing)}")
    losses, mask, alive = arrays["losses"], arrays["mask"], arrays["alive"]
    if losses.ndim != 2 or mask.shape != losses.shape or alive.shape != losses.shape[:1]:
        raise _Shape(f"losses {losses.shape}, mask {mask.shape}, alive {alive.shape}")
    if "tlosses" in arrays and (
        arrays["tlosses"].ndim != 3 or arrays["tlosses"].shape[:2] != losses.shape
    ):
        raise _Shape(f"tlosses {arrays['tlosses'].shape} for losses {losses.shape}")
    for prefix in ("ledger", "path"):
        lengths = {k: v.shape for k, v in arrays.items() if k.startswith(prefix + ".")}
        if len({shape for shape in lengths.values()}) > 1 or any(
            len(shape) != 1 for shape in lengths.values()
        ):
            raise _Shape(f"{prefix} columns of different lengths {sorted(set(lengths.values()))}")
    for column, size in (
        ("ledger.model_id", losses.shape[0]),
        ("ledger.instance", losses.shape[1]),
    ):
        values = arrays.get(column)
        if values is not None and len(values) and (values.min() < 0 or values.max() >= size):
            raise _Shape(f"{column} outside the table of {losses.shape}")


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


def belongs_to(
    path: str | os.PathLike,
    settings: RaceSettings,
    configs: Sequence[ModelConfig] | None,
    n_models: int,
) -> bool | None:
    """Whether the checkpoint at ``path`` is one of the race of ``settings`` and ``configs``
    (``race_fingerprint`` with the data's part the checkpoint keeps); ``None`` when it cannot
    tell (a checkpoint written before checkpoints kept it). ``settings`` are resolved as the
    race resolved them (a race without data had an evaluator).

    Raises:
      CheckpointError: the file is not a readable checkpoint.
    """
    meta = RaceState.peek(path)
    if not isinstance(meta, dict) or "data_fingerprint" not in meta:
        return None
    version = str(meta.get("jrobust_version", __version__))
    data = meta["data_fingerprint"]
    settings = settings.resolved(evaluator=data is None)
    expected = race_fingerprint(settings, configs, n_models, data, version)
    return expected == meta.get("fingerprint")


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
