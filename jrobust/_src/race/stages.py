"""The stage schedule: racing stages of growing training size, then the final race.

Without ``fidelity`` and a final race a race is one stage from instance 0. With them, stage
``s`` of ``S`` races at ``fidelity[s]`` until few enough models are left (``stage_target``), the
survivors move on with fresh instance columns (a new warm-up), and after the last stage the
finalists may race once more on fresh instances (the final race). See ``RaceSettings``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from jrobust._src.race.resolved import ResolvedRace
from jrobust._src.race.state import RaceState, stage_entry
from jrobust._src.settings import RaceSettings

__all__ = [
    "n_stages",
    "next_stage",
    "open_stage",
    "stage_columns",
    "stage_firsts",
    "stage_size",
    "stage_target",
]


def n_stages(settings: RaceSettings) -> int:
    """The racing stages of a race: one per fidelity size (one without ``fidelity``)."""
    return len(settings.fidelity) if settings.fidelity else 1


def stage_target(settings: RaceSettings, n_models: int, stage: int) -> int:
    """The survivors at which racing stage ``stage`` (of ``S``, not the last) ends:
    ``ceil(M (W / M) ** ((stage + 1) / S))`` with ``M = n_models``, ``W = n_winners``: every
    stage keeps the same fraction ``(W / M) ** (1 / S)`` of the models.

    Example:
      >>> from jrobust import RaceSettings
      >>> s = RaceSettings(fidelity=(500, 2000, 8000, 32000))
      >>> [stage_target(s, 64, k) for k in range(3)]
      [23, 8, 3]
    """
    m, w, total = n_models, min(settings.n_winners, n_models), n_stages(settings)
    return int(np.ceil(m * (w / m) ** ((stage + 1) / total) - 1e-9))


def stage_size(state: RaceState, race: ResolvedRace) -> int | None:
    """The training size of the current stage (``None``: each model's own)."""
    sizes = race.settings.fidelity
    if not sizes:
        return None
    return int(sizes[min(state.stage, len(sizes) - 1)])


def open_stage(state: RaceState, stage: int, kind: str) -> None:
    """Open stage ``stage`` (``kind`` ``"race"`` or ``"final"``) at fresh instance columns,
    one past every instance trained so far."""
    trained = np.flatnonzero(state.ledger.mask.any(axis=0))
    start = int(trained.max()) + 1 if len(trained) else 0
    state.stage, state.stage_start, state.stage_round = stage, start, 0
    state.stage_models = int(state.alive.sum())
    state.removed_counts, state.elites = [], []
    state.stages.append(stage_entry(stage, kind, start, state.round + 1, state.stage_models))


def next_stage(state: RaceState, race: ResolvedRace, alive: np.ndarray) -> str:
    """Where a race goes when its current stage ends with ``alive`` left: ``"race"`` (the next
    racing stage), ``"last"`` (straight to the last racing stage: few enough are left for the
    winners, with no final race to follow), ``"final"`` (the final race) or ``"done"``."""
    if state.stage_kind == "final":
        return "done"
    settings, n = race.settings, int(alive.sum())
    final = settings.n_winners > 1 and settings.final_instances > 0 and n >= 2
    if state.stage < race.n_stages - 1:
        if n > settings.n_winners:
            return "race"
        if not final:
            return "last"
    return "final" if final else "done"


def stage_firsts(stages: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """``(first round, stage number)`` of every stage of a race (``[(1, 0)]`` without stages)."""
    return [
        (int(s.get("first_round", 1)), int(s.get("stage", k))) for k, s in enumerate(stages)
    ] or [(1, 0)]


def stage_columns(frame: pd.DataFrame, stages: list[dict[str, Any]]) -> pd.DataFrame:
    """A ledger, history or path table with ``stage`` the stage number (as in
    ``SelectionResult.stages``) and ``stage_kind`` ``"race"``/``"final"``: the tables of
    jrobust 0.2.0 and earlier held the kind in ``stage``; they are read the same way."""
    if "stage" not in frame.columns or "stage_kind" in frame.columns or not len(frame):
        return frame
    kinds = frame["stage"]
    if not kinds.map(lambda v: isinstance(v, str)).all():
        return frame
    firsts = stage_firsts(stages)
    rounds = np.asarray([r for r, _ in firsts])
    numbers = np.asarray([n for _, n in firsts])
    where = np.searchsorted(rounds, frame["round"].to_numpy(), side="right") - 1
    out = frame.copy()
    out["stage"] = numbers[np.clip(where, 0, None)]
    out.insert(out.columns.get_loc("stage") + 1, "stage_kind", kinds.to_numpy())
    return out
