"""``RaceState``: everything a race has learned so far, as data.

The state is a record; the steps that change it are functions elsewhere in this package
(``plan.next_work``, ``tell.record``, ``tell.decide``), each returning what it changed. Its
history and path rows are only ever appended: a round's rows are written once, after every
decision of that round is known.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from jrobust._src.race.ledger import Ledger

__all__ = ["RaceState", "stage_entry"]


def stage_entry(stage: int, kind: str, first_instance: int, first_round: int, models: int):
    """One entry of ``RaceState.stages``: a stage as it opens."""
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


@dataclasses.dataclass
class RaceState:
    """Everything a race has learned so far; ``jrobust._src.race.checkpoint`` stores it.

    Attributes:
      ledger: the rows so far and the loss tables derived from them (``Ledger``).
      alive: ``(M,)`` bool, the models still racing.
      round: rounds completed; n_trainings: instances trained.
      history, path: rows of the history (one per round) and path (one per round and model
        alive in it) tables, appended once per round.
      removed_counts: models removed by each elimination of the current stage (the patience
        stop).
      compile_seconds, train_seconds: summed over the rounds.
      done, stop_reason: whether and why the race ended (``winners``, ``patience``,
        ``max_instances``, ``budget``); a race stopped before its end is not done. A final race
        keeps the reason its racing stages ended with.
      stage: the current stage: ``0 .. S - 1`` the racing stages (one per fidelity size), ``S``
        the final race; stage_start: its first instance column; stage_round: its rounds done;
        stage_models: the models alive when it began.
      elites: the models protected in the next round (the best ``elites`` by ``rank_by``).
      stages: one dict per stage entered (``stage_entry``; ``train_size``, ``last_round``,
        ``survivors`` and ``end`` are filled in as it runs and ends).
      own_sizes: ``(M,)`` each model's own ``train_size`` (for the ledger; not saved).
    """

    ledger: Ledger
    alive: np.ndarray
    round: int = 0
    n_trainings: int = 0
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
    own_sizes: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.stage_models:
            self.stage_models = len(self.alive)
        if not self.stages:
            self.stages = [stage_entry(0, "race", 0, 1, len(self.alive))]

    @classmethod
    def new(cls, n_models: int, width: int = 0) -> RaceState:
        """The state before the first round (``width``: instance columns to reserve)."""
        return cls(Ledger(n_models, width), np.ones(n_models, bool))

    @property
    def n_models(self) -> int:
        return len(self.alive)

    @property
    def stage_kind(self) -> str:
        """``"race"`` in a racing stage, ``"final"`` in the final race."""
        return self.stages[-1]["kind"]

    # ------------------------------------------------------------------ which instances count
    def stage_mask(self) -> np.ndarray:
        """The mask of the current stage's instances only (its rules and statistics see these)."""
        return self.columns_of(len(self.stages) - 1)

    def ranking_mask(self) -> np.ndarray:
        """The instances the final ranking uses: the latest stage in which the alive models have
        trained instances (the final race's fresh instances once it has run)."""
        for k in reversed(range(len(self.stages))):
            mask = self.columns_of(k)
            if mask[self.alive].any():
                return mask
        return self.ledger.mask

    def columns_of(self, k: int) -> np.ndarray:
        """The trained instances of stage ``k`` (its instance columns)."""
        mask = self.ledger.mask
        lo = int(self.stages[k]["first_instance"])
        hi = int(self.stages[k + 1]["first_instance"]) if k + 1 < len(self.stages) else None
        out = np.zeros_like(mask)
        out[:, lo:hi] = mask[:, lo:hi]
        return out

    def table(self, mask: np.ndarray, over: str) -> tuple[np.ndarray, np.ndarray]:
        """``(losses, mask)`` of the ``mask``'s instances as the statistics see them
        (``Ledger.table``)."""
        return self.ledger.table(mask, over)
