"""Ranking the survivors: the best by ``rank_by``, and the dominance guarantee.

A model *dominates* another when it is strictly better on mean, std and PD at once
(``DOMINANCE_STATISTICS``, ``dominance_matrix``). No model is ranked first while another
survivor dominates it (``final_order``; ``dominance_message`` says so in a sentence when it
changed the winner), and no elimination removes a model that dominates one it keeps
(``keep_dominators``, applied by ``tell.decide`` to the rule and to the finalist cut;
``swap_message`` says so when it changed a decision).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jrobust._src.stats import Statistic, get_statistic

__all__ = [
    "DOMINANCE_STATISTICS",
    "best_models",
    "dominance_matrix",
    "dominance_message",
    "dominance_values",
    "final_order",
    "keep_dominators",
    "swap_message",
]


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


def dominance_matrix(values: np.ndarray, others: np.ndarray | None = None) -> np.ndarray:
    """``beats[a, b]``: model ``a`` is strictly better than model ``b`` on every statistic of
    ``values`` (``(3, k)``, ``dominance_values``); with ``others`` (``(3, j)``), ``(k, j)``:
    model ``a`` of ``values`` against model ``b`` of ``others``.

    A statistic that is NaN for either model (e.g. the std of a model with a failed, +inf,
    instance) decides nothing, so such a pair is never a dominance. On fixed values the relation
    is a strict partial order: irreflexive, and transitive (``a < b`` and ``b < c`` on all three
    give ``a < c`` on all three).

    Example:
      >>> dominance_matrix(np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]])).tolist()
      [[False, True], [False, False]]
    """
    others = values if others is None else others
    return (values[:, :, None] < others[:, None, :]).all(axis=0)


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
    beats = dominance_matrix(values)  # beats[a, b]: a dominates b
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


def keep_dominators(
    losses: np.ndarray,
    mask: np.ndarray,
    counts: np.ndarray,
    keep: np.ndarray,
    leaving: np.ndarray,
    order: Sequence[int],
    protected: Sequence[int] = (),
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """An elimination that removes no model dominating one it keeps, with as many kept.

    While a model ``r`` the elimination removes dominates a model ``k`` it keeps (strictly
    better on mean, std and PD on the table the elimination saw, ``dominance_matrix``) with at
    least as many instances (``counts[r] >= counts[k]``: fewer instances are weaker evidence),
    ``r`` is kept and ``k`` leaves instead; the ``protected`` models (the round's elites) never
    leave. Of the pairs, the best ``r`` by ``order`` comes back first, replacing the worst
    ``k`` by ``order`` it dominates.

    It ends: let ``depth(m)`` be the number of models that dominate ``m``. If ``r`` dominates
    ``k``, every model dominating ``r`` dominates ``k`` (transitivity) and so does ``r``, while
    ``r`` does not dominate itself: ``depth(r) < depth(k)``. Every swap therefore lowers the sum
    of ``depth`` over the kept models, a non-negative integer, by at least 1, so there are at
    most ``sum(depth)`` swaps. At the end no removed model dominates a kept one other than a
    protected model with as many instances.

    Args:
      losses, mask: ``(M, N)``: the table the elimination saw (a stage's instances, over the
        race's ``over``).
      counts: ``(M,)`` each model's instances in that table.
      keep: ``(M,)`` bool: the models the elimination keeps.
      leaving: ``(M,)`` bool: the models it removes (disjoint from ``keep``).
      order: model ids, best first (``best_models``), among them every model of ``keep`` and
        ``leaving``.
      protected: models that are never swapped out.

    Returns:
      ``(keep, swaps)``: the new ``keep`` (as many models as before), and the swaps in the
      order made, ``(r, k)``: ``r`` the elimination removed and now stays, ``k`` leaves instead.

    Example:
      >>> x = np.array([[1.0, 1.1, 1.2, 1.3], [2.0, 3.0, 4.0, 5.0]])  # 0 dominates 1
      >>> keep, swaps = keep_dominators(x, np.ones_like(x, bool), np.array([4, 4]),
      ...                               np.array([False, True]), np.array([True, False]), [1, 0])
      >>> keep.tolist(), swaps
      ([True, False], [(0, 1)])
    """
    keep, leaving, counts = np.asarray(keep, bool), np.asarray(leaving, bool), np.asarray(counts)
    ids = np.asarray([int(m) for m in order if keep[m] or leaving[m]], np.int64)
    if not leaving.any() or not keep.any():
        return keep.copy(), []
    values = dominance_values(losses, mask, ids)
    inside = keep[ids].copy()
    movable = ~np.isin(ids, np.asarray(protected, np.int64))
    if not dominance_matrix(values[:, ~inside], values[:, inside & movable]).any():
        return keep.copy(), []  # the usual case, without the full (k, k) matrix
    beats = dominance_matrix(values)
    beats &= counts[ids][:, None] >= counts[ids][None, :]
    swaps: list[tuple[int, int]] = []
    while True:
        can = beats & ~inside[:, None] & (inside & movable)[None, :]
        back = np.flatnonzero(can.any(axis=1))
        if not len(back):
            break
        r = back[0]  # the best by order (ids follow order)
        k = np.flatnonzero(can[r])[-1]  # the worst it dominates
        inside[r], inside[k] = True, False
        swaps.append((int(ids[r]), int(ids[k])))
    out = keep.copy()
    out[ids] = inside
    return out, swaps


def _label(m: int, names: Mapping[int, str]) -> str:
    name = names.get(int(m))
    return f"model {m}" + (f" ({name})" if name else "")


def _numbers(v: Mapping[str, float] | None, w: Mapping[str, float] | None) -> str:
    """`` (mean 0.036 < 0.0397, std ..., PD ...)`` for the statistics ``v`` better than ``w``."""
    if not v or not w:
        return ""
    parts = (
        f"{'PD' if k == 'pd' else k} {float(v[k]):.3g} < {float(w[k]):.3g}"
        for k in DOMINANCE_STATISTICS
    )
    return " (" + ", ".join(parts) + ")"


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
    crowned, winner = int(note["crowned"]), int(note["winner"])
    beaters = [int(m) for m in note["dominated_by"]]
    values = note.get("values", {})
    best = winner if winner in beaters else beaters[0]
    numbers = _numbers(values.get(str(best)), values.get(str(crowned)))
    who = " and ".join(_label(m, names) for m in beaters[:3])
    who += " and others" if len(beaters) > 3 else ""
    verb = "is" if len(beaters) == 1 else "are"
    text = (
        f"{_label(crowned, names)} was ranked first by {note['rank_by']} but {who} {verb} "
        f"better on mean, std and PD{numbers}"
    )
    if winner in beaters:
        return text + f", so {_label(winner, names)} wins"
    return (
        text + f"; {_label(winner, names)}, the best survivor by {note['rank_by']} that no "
        "other survivor beats on all three, wins"
    )


def swap_message(swap: Mapping[str, Any], names: Mapping[int, str] | None = None) -> str:
    """One sentence for a swap of ``keep_dominators`` in a race.

    Args:
      swap: ``round``; ``kept`` (the model the elimination removed, kept instead) and
        ``removed`` (the model that left instead); ``by``: ``"rule"`` or ``"finalists"`` (the
        finalist cut, with ``rank_by``); ``values`` (optional): model id (as a string) ->
        its ``mean``, ``std`` and ``pd`` on the table the elimination saw.
      names: model id -> name.

    Example:
      >>> swap = dict(round=7, kept=5, removed=9, by="rule", values={
      ...     "5": dict(mean=0.036, std=0.0026, pd=0.0065),
      ...     "9": dict(mean=0.0397, std=0.012, pd=0.038)})
      >>> print(swap_message(swap))
      model 5 was removed by the rule in round 7 but is better on mean, std and PD than model 9
      (mean 0.036 < 0.0397, std 0.0026 < 0.012, PD 0.0065 < 0.038), which left instead
    """
    names = names or {}
    kept, removed = int(swap["kept"]), int(swap["removed"])
    values = swap.get("values") or {}
    numbers = _numbers(values.get(str(kept)), values.get(str(removed)))
    how = (
        "removed by the rule"
        if swap.get("by", "rule") == "rule"
        else f"not among the finalists by {swap.get('rank_by', 'rank_by')}"
    )
    return (
        f"{_label(kept, names)} was {how} in round {swap['round']} but is better on mean, std "
        f"and PD than {_label(removed, names)}{numbers}, which left instead"
    )
