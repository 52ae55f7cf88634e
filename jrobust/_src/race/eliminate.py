"""The one place a model leaves a race, and why.

A model leaves by the rule of a round (``"rule"``) or, when the race moves on to its final
race, because it is not among the ``n_winners`` best survivors (``"finalists"``), or in place of
a model that either decision removed but that is strictly better than it on mean, std and PD
(``"dominated"``: the dominance guarantee, ``ranking.keep_dominators``). All are decided in the
same step (``tell.decide``) and enter the round's rows once.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from jrobust._src.race.state import RaceState

__all__ = ["REASONS", "eliminate"]

#: Why a model can leave a race: the rule, the finalist cut, or the dominance guarantee (it was
#: kept by one of them, but a model they removed dominates it and stays instead).
REASONS = ("rule", "finalists", "dominated")


def eliminate(state: RaceState, removed: Mapping[int, str]) -> list[int]:
    """Remove the models ``removed`` (model id -> reason, one of ``REASONS``) from the race.

    Returns:
      Their ids, in the order given.

    Raises:
      ValueError: a model that already left, or an unknown reason (a bug in a rule wrapper).
    """
    ids = [int(m) for m in removed]
    if not ids:
        return ids
    unknown = {r for r in removed.values() if r not in REASONS}
    if unknown:
        raise ValueError(f"unknown reasons to leave a race: {sorted(unknown)}")
    gone = [m for m in ids if not state.alive[m]]
    if gone:
        raise ValueError(f"models {gone} have already left the race")
    state.alive[np.asarray(ids, np.int64)] = False
    return ids
