"""Ranking the survivors: the best by ``rank_by``, and the dominance guarantee.

No model is ranked first while another survivor is strictly better than it on mean, std and PD
at once (``final_order``); ``dominance_message`` says so in a sentence when it changed the winner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jrobust._src.stats import Statistic, get_statistic

__all__ = [
    "DOMINANCE_STATISTICS",
    "best_models",
    "dominance_message",
    "dominance_values",
    "final_order",
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
