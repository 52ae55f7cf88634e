"""Which instances the next round trains (``next_work``), the question ``Race.ask`` asks."""

from __future__ import annotations

import numpy as np

from jrobust._src.race.resolved import ResolvedRace
from jrobust._src.race.stages import stage_size
from jrobust._src.race.state import RaceState
from jrobust._src.race.work import Work

__all__ = ["next_work"]


def next_work(state: RaceState, race: ResolvedRace) -> Work | None:
    """The next round's instances, or ``None`` when the race is over (``state.done``; the
    budget ends it here, with ``stop_reason = "budget"``, when the next round would pass it).

    The first round of a stage trains ``warmup`` instances of every model racing in it; later
    rounds ``instances_per_round`` more of every survivor (``"auto"``: as many as keep the round
    as wide as the stage's first elimination rounds, ``models_in_stage // survivors``, at least
    1), up to ``max_instances`` per model and stage. The final race is one round of
    ``final_instances`` fresh instances per finalist. A stage's instances are fresh: their
    indices start beyond every instance trained before it.
    """
    if state.done:
        return None
    settings = race.settings
    alive_ids = np.flatnonzero(state.alive)
    counts = state.stage_mask()[alive_ids].sum(axis=1)
    final = state.stage_kind == "final"
    if final:
        per_model = int(settings.final_instances)
    elif state.stage_round == 0:
        per_model = race.warmup
    elif settings.instances_per_round == "auto":
        per_model = max(1, state.stage_models // len(alive_ids))
    else:
        per_model = int(settings.instances_per_round)
    stops = counts + per_model
    if not final:
        stops = np.minimum(stops, settings.max_instances)
    models = np.repeat(alive_ids, stops - counts)
    if not len(models):  # ``tell.decide`` ends a stage whose survivors are all at the maximum
        raise RuntimeError("the race has nothing to train but is not over; this is a bug")
    instances = state.stage_start + np.concatenate(
        [np.arange(a, b) for a, b in zip(counts, stops, strict=True)]
    )
    if settings.budget is not None and state.n_trainings + len(models) > settings.budget:
        state.done, state.stop_reason = True, "budget"
        if state.stages[-1]["end"] == "":
            state.stages[-1].update(end="budget", last_round=state.round)
        return None
    size = stage_size(state, race)
    sizes = None if size is None else np.full(len(models), size, np.int64)
    return Work(models.astype(np.int64), instances.astype(np.int64), sizes)
