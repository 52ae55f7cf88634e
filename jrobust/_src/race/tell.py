"""What a race does with the losses it is told: ``record`` them, then ``decide`` who leaves.

``record`` enters a round's losses into the ledger (failures as +inf, divergence flagged) and
adds the round's history row. ``decide`` applies the rule on the current stage's instances
(never to an elite of the round, never below ``n_winners``), decides whether the stage (and the
race) is over and, when the race moves on to its final race, which survivors are finalists;
neither decision removes a model that dominates one it keeps (``ranking.keep_dominators``). It
then writes the round's path rows and completes its history row once, with every decision
known, and returns a ``RoundReport``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from jrobust._src.race.eliminate import eliminate
from jrobust._src.race.ledger import ledger_rows, statuses
from jrobust._src.race.ranking import best_models, keep_dominators
from jrobust._src.race.resolved import ResolvedRace
from jrobust._src.race.stages import next_stage, open_stage, stage_target
from jrobust._src.race.state import RaceState
from jrobust._src.race.work import Outcome, Work

__all__ = ["RoundReport", "decide", "record"]


class RoundReport(NamedTuple):
    """What one round changed."""

    round: int
    trained: int  # instances trained in the round
    removed: dict[int, str]  # model id -> why it left (eliminate.REASONS)
    elites: tuple[int, ...]  # the models protected in the round
    rescued: tuple[int, ...]  # elites the rule would have removed
    stage_end: str  # why the round ended its stage ("" if it did not)
    done: bool  # whether the race is over
    # (kept, removed instead): a model the rule or the finalist cut removed but that dominates
    # one they kept stays, and the dominated one leaves ("dominated"); the rule's swaps first
    swaps: tuple[tuple[int, int], ...] = ()


# ---------------------------------------------------------------------------------- record
def record(state: RaceState, work: Work, outcome: Outcome) -> None:
    """Enter a round's losses into the ledger (failures as +inf) and add its history row."""
    models, instances = np.asarray(work.model_ids), np.asarray(work.instances)
    losses = np.asarray(outcome.losses, np.float64).reshape(-1)
    ok = np.asarray(outcome.ok, bool).reshape(-1) & np.isfinite(losses)
    losses = np.where(ok, losses, np.inf)
    transformed, pairs = _transformed(state, work, outcome, ok)
    state.round += 1
    state.stage_round += 1
    state.ledger.enter(models, instances, losses, transformed, pairs)
    state.n_trainings += len(models)
    reference = state.ledger.finite_losses()
    sizes = _sizes_of(state, work)
    base = dict(
        model_id=models.astype(np.int64),
        instance=instances.astype(np.int64),
        round=state.round,
        stage=int(state.stages[-1]["stage"]),
        stage_kind=state.stage_kind,
        train_size=sizes,
        seconds=outcome.seconds / max(len(models), 1),
    )
    tstatus = (
        None if transformed is None else statuses(transformed, np.isfinite(transformed), reference)
    )
    rows = ledger_rows(
        base,
        losses,
        statuses(losses, ok, reference),
        outcome.metrics,
        transformed,
        tstatus,
        state.ledger.pairs,
    )
    state.ledger.append(rows)
    state.compile_seconds += outcome.compile_seconds
    state.train_seconds += outcome.seconds
    size = int(sizes[0]) if len(sizes) and (sizes == sizes[0]).all() else 0
    if state.stages[-1]["train_size"] is None:
        state.stages[-1]["train_size"] = size
    state.history.append(
        dict(
            round=state.round,
            stage=int(state.stages[-1]["stage"]),
            stage_kind=state.stage_kind,
            train_size=size,
            trained=len(models),
            seconds=float(outcome.seconds),
            compile_seconds=float(outcome.compile_seconds),
            instance_steps=int(outcome.instance_steps),
        )
    )


def _sizes_of(state: RaceState, work: Work) -> np.ndarray:
    if work.train_sizes is not None:
        return np.asarray(work.train_sizes, np.int64)
    if state.own_sizes is not None:
        return np.asarray(state.own_sizes, np.int64)[work.model_ids]
    return np.zeros(len(work.model_ids), np.int64)  # an evaluator's own sizes: unknown


def _transformed(state: RaceState, work: Work, outcome: Outcome, ok: np.ndarray):
    """The transformed losses ``(W, T)`` of a round (failures as +inf) and their pairs, or
    ``(None, None)``; every round of a race must have the same transformations."""
    ledger = state.ledger
    if outcome.transformed is None:
        if ledger.tlosses is not None and len(work.model_ids):
            raise ValueError(
                "this race's earlier rounds had transformed losses, this one has none: an "
                "evaluator must return (losses, transformed_losses) in every round"
            )
        return None, None
    values = np.asarray(outcome.transformed, np.float64)
    if values.ndim != 2 or values.shape[0] != len(work.model_ids):
        raise ValueError(
            f"transformed losses must have shape (instances, transforms) = "
            f"({len(work.model_ids)}, T), got {values.shape}"
        )
    n_t = values.shape[1]
    if ledger.tlosses is not None and ledger.tlosses.shape[2] != n_t:
        raise ValueError(
            f"this race has {ledger.tlosses.shape[2]} transformed test sets, a round returned "
            f"{n_t}; every round must evaluate the same transformations"
        )
    pairs = [tuple(p) for p in (outcome.pairs or [("custom", float(t)) for t in range(n_t)])]
    values = np.where(ok[:, None] & np.isfinite(values), values, np.inf)
    return values, pairs


# ---------------------------------------------------------------------------------- decide
def _apply_rule(state, race, table, tmask, counts, before, n_min, acted):
    """The rule's decision of a racing round: who it keeps (with the round's elites protected,
    at least ``n_winners`` kept, and the dominance swaps), its p-values, the elites protected and
    those the protection rescued, and the swaps ``(kept, removed instead)``."""
    settings, rule = race.settings, race.rule
    keep = np.asarray(
        rule.select(table, tmask, before, n_min, race.warmup, race.statistic, race.rank_by), bool
    )
    keep = keep & before
    pvalues, protected, rescued = None, [], []
    if acted and callable(getattr(rule, "pvalues", None)):
        pvalues = rule.pvalues(table, tmask, before, race.statistic, race.rank_by)
    if acted and settings.elites:
        limit = min(int(settings.elites), int(before.sum()) - 1)
        protected = [int(e) for e in state.elites if before[e]][:limit]
        rescued = [e for e in protected if not keep[e]]
        keep[protected] = True
    floor = min(settings.n_winners, int(before.sum()))
    if keep.sum() < floor:
        keep[best_models(race.statistic, race.rank_by, table, tmask, before, floor)] = True
    order = _order(race, table, tmask, before)
    keep, swaps = keep_dominators(table, tmask, counts, keep, before & ~keep, order, protected)
    return keep, pvalues, protected, rescued, swaps


def _cut_finalists(race, table, tmask, counts, keep, removed):
    """The finalists when the race moves on to its final race: the ``n_winners`` best of
    ``keep``, with the dominance swaps; the others are added to ``removed`` (reason
    ``finalists``, or ``dominated`` for a swap). Returns the swaps."""
    n = race.settings.n_winners
    finalists = np.zeros_like(keep)
    finalists[best_models(race.statistic, race.rank_by, table, tmask, keep, n)] = True
    order = _order(race, table, tmask, keep)
    finalists, swaps = keep_dominators(table, tmask, counts, finalists, keep & ~finalists, order)
    out = {k for _, k in swaps}
    cut = np.flatnonzero(keep & ~finalists)
    removed.update({int(m): "dominated" if m in out else "finalists" for m in cut})
    return swaps


def decide(state: RaceState, race: ResolvedRace) -> RoundReport:
    """Remove the models the rule rejects (and, when the race moves on to its final race, the
    survivors that are not finalists), write the round's path rows and history, and move to the
    next stage or end the race. In the final race nothing is removed: the finalists are ordered
    by the result.

    The dominance guarantee: neither the rule nor the finalist cut removes a model that is
    strictly better on mean, std and PD (on the table they decided on) than a model they keep
    with no more instances; such a model stays and the one it dominates leaves in its place
    (``ranking.keep_dominators``), so each decision removes as many models as it chose to. The
    rule's swaps never remove an elite of the round (their protection holds); the finalist cut
    does not protect elites, nor do its swaps."""
    settings = race.settings
    alive_ids = np.flatnonzero(state.alive)
    smask = state.stage_mask()
    counts = smask.sum(axis=1)
    n_min = int(counts[alive_ids].min())
    before = state.alive.copy()
    final = state.stage_kind == "final"
    acted = not final and n_min > race.warmup
    table, tmask = state.table(smask, settings.over)
    keep, pvalues, protected, rescued = before.copy(), None, [], []
    swaps: list[tuple[int, int]] = []
    if not final:
        keep, pvalues, protected, rescued, swaps = _apply_rule(
            state, race, table, tmask, counts, before, n_min, acted
        )
    out = {k for _, k in swaps}
    removed = {int(m): "dominated" if m in out else "rule" for m in np.flatnonzero(before & ~keep)}
    if acted:
        state.removed_counts.append(len(removed))
    end = _stage_end(state, race, keep, acted, final)
    going = next_stage(state, race, keep) if end else ""
    cut_swaps: list[tuple[int, int]] = []
    if going == "final" and keep.sum() > settings.n_winners:
        cut_swaps = _cut_finalists(race, table, tmask, counts, keep, removed)
    eliminate(state, removed)
    report = (removed, protected, rescued, pvalues, swaps, cut_swaps)
    _write_round(state, race, alive_ids, before, table, tmask, smask, report)
    if end:
        _move_on(state, race, end, going)
    if settings.elites and not state.done and state.stage_round:
        table, tmask = state.table(state.stage_mask(), settings.over)
        best = best_models(race.statistic, race.rank_by, table, tmask, state.alive, settings.elites)
        state.elites = [int(e) for e in best]
    return RoundReport(
        state.round,
        int(state.history[-1]["trained"]),
        removed,
        tuple(protected),
        tuple(rescued),
        end,
        state.done,
        tuple(swaps + cut_swaps),
    )


def _order(race: ResolvedRace, table: np.ndarray, tmask: np.ndarray, among: np.ndarray):
    """The models ``among``, best first by ``rank_by`` (ties: ``statistic``, then the id)."""
    return best_models(race.statistic, race.rank_by, table, tmask, among, int(among.sum()))


def _stage_end(
    state: RaceState, race: ResolvedRace, keep: np.ndarray, acted: bool, final: bool
) -> str:
    """Why the current stage ends after this round (``""``: it goes on)."""
    settings = race.settings
    n = int(keep.sum())
    if final:
        return "final"
    if n <= settings.n_winners:
        return "winners"
    if race.rule.should_stop(state.removed_counts):
        return "patience"
    if (
        acted
        and state.stage < race.n_stages - 1
        and n <= stage_target(settings, len(keep), state.stage)
    ):
        return "target"
    counts = state.stage_mask()[keep].sum(axis=1)
    if (counts >= settings.max_instances).all():  # nothing more to train in this stage
        return "max_instances"
    return ""


def _write_round(
    state: RaceState,
    race: ResolvedRace,
    alive_ids: np.ndarray,
    before: np.ndarray,
    table: np.ndarray,
    tmask: np.ndarray,
    smask: np.ndarray,
    report: tuple[dict[int, str], list[int], list[int], Any, list, list],
) -> None:
    """The round's path rows (one per model alive in it) and the rest of its history row, from
    the round's decisions ``(removed, protected, rescued, pvalues, swaps, cut_swaps)``."""
    removed, protected, rescued, pvalues, swaps, cut_swaps = report
    stat_values, rank_values = race.statistic(table, tmask), race.rank_by(table, tmask)
    last = state.history[-1]
    for m in alive_ids:
        state.path.append(
            dict(
                round=state.round,
                stage=int(last["stage"]),
                stage_kind=last["stage_kind"],
                train_size=int(last["train_size"]),
                model_id=int(m),
                statistic=float(stat_values[m]),
                rank=float(rank_values[m]),
                instances=int(smask[m].sum()),
                alive=int(m) not in removed,
                elite=int(m) in protected,
                pvalue=float(pvalues.adjusted[m]) if pvalues is not None else float("nan"),
                pvalue_raw=float(pvalues.raw[m]) if pvalues is not None else float("nan"),
                reason=removed.get(int(m), ""),
            )
        )
    n_min = int(smask[alive_ids].sum(axis=1).min())
    state.history[-1].update(
        instances_per_model=n_min,
        survivors=int(before.sum()),
        eliminated=list(removed),
        remaining=int(state.alive.sum()),
        elites=list(protected),
        rescued=list(rescued),
        swaps=[[int(r), int(k)] for r, k in swaps],
        finalist_swaps=[[int(r), int(k)] for r, k in cut_swaps],
    )
    if pvalues is not None and pvalues.omnibus is not None:  # the Friedman rule's omnibus test
        state.history[-1]["pvalue_omnibus"] = float(pvalues.omnibus)


def _move_on(state: RaceState, race: ResolvedRace, end: str, going: str) -> None:
    """Close the current stage (``end``: why) and open what comes next (``going``)."""
    entry = state.stages[-1]
    entry.update(end=end, last_round=state.round, survivors=int(state.alive.sum()))
    if going == "race":
        open_stage(state, state.stage + 1, "race")
    elif going == "last":  # the few left are still judged at the last size
        open_stage(state, race.n_stages - 1, "race")
    elif going == "final":
        state.stop_reason = end
        open_stage(state, race.n_stages, "final")
    else:
        if entry["kind"] != "final":
            state.stop_reason = end
        state.done = True
