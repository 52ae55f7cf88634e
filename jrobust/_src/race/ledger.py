"""The ledger: one row per trained instance (and per transformed test set of it).

It is the race's single table: the rules decide on it, the result shows it, the checkpoint stores
it. Rows arrive round by round as columns (``Ledger.append``); the ``(models, instances)`` loss
table and its mask that the statistics see (and the ``(models, instances, T)`` table of the
transformed test sets) are derived from them, kept current as rows arrive and rebuilt from the
columns when a checkpoint is read (``Ledger.from_frame``), so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DIVERGED_FACTOR",
    "DIVERGED_LOSS",
    "Ledger",
    "ledger_rows",
    "statuses",
    "transform_table",
]

#: An instance is ``diverged`` when its loss is finite but at least ``DIVERGED_LOSS``, or above
#: the median of every finite loss in the ledger so far by more than ``DIVERGED_FACTOR`` times
#: their median magnitude (for positive losses: about ``DIVERGED_FACTOR`` times the median).
#: Divergence is a loss far *above* the others: a low or negative loss never is. Its loss still
#: counts in the statistics: divergence is non-robustness, and the statistics should see it.
DIVERGED_FACTOR = 1e3
DIVERGED_LOSS = 1e10

#: The columns every ledger has, in their order (then the test metrics, then ``transform`` and
#: ``param`` on a population with transformed test sets).
BASE_COLUMNS = (
    "model_id", "instance", "loss", "status", "round", "stage", "stage_kind", "train_size",
    "seconds",
)  # fmt: skip


def statuses(losses: np.ndarray, ok: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``"failed"`` (not finite or not ok), ``"diverged"`` (far *above* the ``reference``
    losses, see ``DIVERGED_FACTOR``: a loss is never too good, and losses may be negative), else
    ``"ok"``, per loss."""
    finite = np.isfinite(losses) & ok
    center = np.median(reference) if reference.size else 0.0
    scale = np.median(np.abs(reference)) if reference.size else 0.0
    value = np.where(finite, losses, 0.0)
    far = (scale > 0) & (value - center > DIVERGED_FACTOR * scale)
    diverged = finite & ((value >= DIVERGED_LOSS) | far)
    return np.where(~finite, "failed", np.where(diverged, "diverged", "ok"))


def ledger_rows(
    base: Mapping[str, Any],
    losses: np.ndarray,
    status: np.ndarray,
    metrics: Mapping[str, np.ndarray],
    transformed: np.ndarray | None = None,
    transformed_status: np.ndarray | None = None,
    pairs: Sequence[Sequence[Any]] = (),
) -> dict[str, np.ndarray]:
    """The ledger rows of ``W`` instances as columns: one row per instance and, with
    ``transformed`` ``(W, T)``, after each instance's row one row per ``(transform, param)`` of
    ``pairs`` (``transform="none"`` marks the untransformed row; the metrics and seconds are on
    it only).

    Args:
      base: the columns every row of an instance repeats (``model_id``, ``instance``,
        ``round``, ...; arrays of ``W`` or scalars), in their order.
      losses, status: ``(W,)`` the untransformed test loss and its status.
      metrics: name -> ``(W,)`` further test metrics.
      transformed, transformed_status: ``(W, T)`` the loss on each transformed test set.
      pairs: the ``T`` ``(transform, param)`` of ``transformed``'s columns.

    Example:
      >>> rows = ledger_rows({"model_id": np.array([0, 1])}, np.array([0.5, 0.7]),
      ...                    np.array(["ok", "ok"]), {})
      >>> rows["model_id"].tolist(), rows["loss"].tolist()
      ([0, 1], [0.5, 0.7])
    """
    w = len(losses)
    n_t = 0 if transformed is None else transformed.shape[1]
    per = 1 + n_t  # rows per instance
    repeat = lambda a: np.repeat(np.broadcast_to(np.asarray(a), (w,)), per)  # noqa: E731
    cols = {k: repeat(v) for k, v in base.items() if k not in ("loss", "status", "seconds")}
    loss = np.empty((w, per))
    loss[:, 0] = losses
    stat = np.empty((w, per), dtype=object)
    stat[:, 0] = status
    if n_t:
        loss[:, 1:] = transformed
        stat[:, 1:] = transformed_status
    cols["loss"] = loss.reshape(-1)
    cols["status"] = stat.reshape(-1).astype(str).astype(object)
    ordered = {}
    for name in BASE_COLUMNS:  # the documented order
        if name in cols:
            ordered[name] = cols.pop(name)
        elif name in base:  # seconds: the instance's time is on its untransformed row
            seconds = np.zeros((w, per))
            seconds[:, 0] = np.broadcast_to(np.asarray(base[name], float), (w,))
            ordered[name] = seconds.reshape(-1)
    ordered.update(cols)
    for name, values in metrics.items():
        ordered[name] = _first_only(np.asarray(values, np.float64), per)
    if n_t:
        names = np.array([str(p[0]) for p in pairs], dtype=object)
        params = np.array([float(p[1]) for p in pairs])
        ordered["transform"] = np.tile(np.concatenate([["none"], names]).astype(object), w)
        ordered["param"] = np.tile(np.concatenate([[np.nan], params]), w)
    return ordered


def _first_only(values: np.ndarray, per: int) -> np.ndarray:
    """``values`` on every instance's first row, NaN on its transformed rows."""
    out = np.full((len(values), per), np.nan)
    out[:, 0] = values
    return out.reshape(-1)


def transform_table(
    tlosses: np.ndarray, mask: np.ndarray, over: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(losses, mask)`` over transformed test sets (``over``: ``"transforms"`` or ``"both"``)
    from ``tlosses`` ``(M, N, T)`` and the instances' ``mask`` ``(M, N)``: per transformation
    parameter the mean over the instances (+inf when one of them failed), ``(M, T)``; or per
    (instance, parameter), ``(M, N * T)``, column ``n * T + t``.

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


class Ledger:
    """The rows of a race and the loss tables derived from them.

    Attributes:
      n_models: ``M``.
      losses: ``(M, N)`` float64 instance losses on the untransformed test set (NaN: not
        trained, +inf: failed); ``N`` grows as instances with larger indices arrive.
      mask: ``(M, N)`` bool, True where an instance is trained.
      tlosses: ``(M, N, T)`` float64 losses on the ``T`` transformed test sets (``None``
        without them); pairs: their ``(transform, param)``.
    """

    def __init__(self, n_models: int, width: int = 0) -> None:
        self.n_models = int(n_models)
        self.losses = np.full((self.n_models, width), np.nan)
        self.mask = np.zeros((self.n_models, width), bool)
        self.tlosses: np.ndarray | None = None
        self.pairs: list[tuple[str, float]] = []
        self._parts: list[pd.DataFrame] = []

    def __len__(self) -> int:
        return sum(len(p) for p in self._parts)

    # ------------------------------------------------------------------ rows
    def append(self, rows: Mapping[str, np.ndarray]) -> None:
        """Add a round's rows (columns of equal length, see ``ledger_rows``)."""
        self._parts.append(pd.DataFrame(dict(rows)))

    def frame(self, *, sort: bool = True) -> pd.DataFrame:
        """Every row as a DataFrame (sorted by model and instance, each instance's transformed
        rows after its own; ``sort=False``: in the order they arrived)."""
        parts = [p for p in self._parts if len(p)]
        if not parts:
            return pd.DataFrame(columns=list(BASE_COLUMNS))
        frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].copy()
        if sort:
            frame = frame.sort_values(["model_id", "instance"], kind="stable")
            frame = frame.reset_index(drop=True)
        return frame

    # ------------------------------------------------------------------ tables
    def enter(
        self,
        model_ids: np.ndarray,
        instances: np.ndarray,
        losses: np.ndarray,
        transformed: np.ndarray | None = None,
        pairs: Sequence[Sequence[Any]] | None = None,
    ) -> None:
        """Enter a round's losses into the tables (``transformed``: ``(W, T)``)."""
        if len(instances):
            self._ensure_width(int(np.max(instances)) + 1)
        self.losses[model_ids, instances] = losses
        self.mask[model_ids, instances] = True
        if transformed is None:
            return
        if self.tlosses is None:
            m, n = self.losses.shape
            self.tlosses = np.full((m, n, transformed.shape[1]), np.nan)
            self.pairs = [(str(a), float(b)) for a, b in pairs]
        self.tlosses[model_ids, instances] = transformed

    def _ensure_width(self, width: int) -> None:
        extra = width - self.losses.shape[1]
        if extra <= 0:
            return
        n = self.n_models
        self.losses = np.concatenate([self.losses, np.full((n, extra), np.nan)], axis=1)
        self.mask = np.concatenate([self.mask, np.zeros((n, extra), bool)], axis=1)
        if self.tlosses is not None:
            pad = np.full((n, extra, self.tlosses.shape[2]), np.nan)
            self.tlosses = np.concatenate([self.tlosses, pad], axis=1)

    def finite_losses(self) -> np.ndarray:
        """Every finite untransformed loss so far (the reference of ``statuses``)."""
        return self.losses[self.mask & np.isfinite(self.losses)]

    def table(self, mask: np.ndarray, over: str) -> tuple[np.ndarray, np.ndarray]:
        """``(losses, mask)`` of the ``mask``'s instances as the statistics see them: per
        instance (``over="instances"``), or over the transformed test sets
        (``transform_table``)."""
        if over == "instances":
            return self.losses, mask
        if self.tlosses is None:
            raise ValueError(
                f"over={over!r} takes the statistics over transformed test sets, but this race "
                "has none: train on jrobust.data.with_transforms(population, rotation=[...]) "
                "or have the evaluator return (losses, transformed_losses)"
            )
        return transform_table(self.tlosses, mask, over)

    @classmethod
    def from_frame(cls, n_models: int, frame: pd.DataFrame, width: int = 0) -> Ledger:
        """The ledger of these rows, its tables rebuilt from them (a checkpoint's)."""
        ledger = cls(n_models, width)
        if not len(frame):
            return ledger
        ledger._ensure_width(int(frame["instance"].max()) + 1)
        if "transform" in frame.columns:
            plain = frame["transform"].fillna("none").to_numpy() == "none"
        else:
            plain = np.ones(len(frame), bool)
        rows = frame[plain]
        models = rows["model_id"].to_numpy(np.int64)
        instances = rows["instance"].to_numpy(np.int64)
        ledger.enter(models, instances, rows["loss"].to_numpy(np.float64))
        if not plain.all():
            trows = frame[~plain]
            pairs = list(dict.fromkeys(zip(trows["transform"], trows["param"], strict=True)))
            column = {p: t for t, p in enumerate(pairs)}
            t = np.array([column[p] for p in zip(trows["transform"], trows["param"], strict=True)])
            m, n = ledger.losses.shape
            ledger.tlosses = np.full((m, n, len(pairs)), np.nan)
            ledger.pairs = [(str(a), float(b)) for a, b in pairs]
            ledger.tlosses[
                trows["model_id"].to_numpy(np.int64), trows["instance"].to_numpy(np.int64), t
            ] = trows["loss"].to_numpy(np.float64)
        ledger._parts = [frame.reset_index(drop=True)]
        return ledger
