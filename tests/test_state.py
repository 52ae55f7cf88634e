"""The race as data: its steps (next_work, record, decide), the ledger's statuses, and data-only
checkpoints."""

import numpy as np
import pandas as pd
import pytest

from jrobust._src.race.checkpoint import (
    CheckpointError,
    CheckpointMismatch,
    load_state,
    peek,
    save_state,
)
from jrobust._src.race.ledger import DIVERGED_FACTOR, Ledger
from jrobust._src.race.plan import next_work
from jrobust._src.race.resolved import ResolvedRace
from jrobust._src.race.state import RaceState
from jrobust._src.race.tell import decide, record
from jrobust._src.race.work import Outcome, Work
from jrobust._src.result import SelectionResult
from jrobust._src.settings import RaceSettings


def outcome(losses, ok=None):
    losses = np.asarray(losses, float)
    return Outcome(losses, {"rmse": losses * 2}, np.ones(len(losses), bool) if ok is None else ok)


def resolved(**kw) -> ResolvedRace:
    return ResolvedRace.of(RaceSettings(**kw), batched=True)


def test_next_work_warmup_then_auto_then_fixed():
    race = resolved(warmup=2, max_instances=6)
    state = RaceState.new(4, 6)
    work = next_work(state, race)
    assert list(work.model_ids) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert list(work.instances) == [0, 1] * 4
    record(state, work, outcome(np.arange(8.0)))
    state.alive[:] = [True, True, False, False]
    auto = next_work(state, race)  # 4 models / 2 alive: 2 instances each keep the round as wide
    assert list(auto.model_ids) == [0, 0, 1, 1] and list(auto.instances) == [2, 3, 2, 3]
    fixed = next_work(state, resolved(warmup=2, max_instances=6, instances_per_round=3))
    assert list(fixed.instances) == [2, 3, 4, 2, 3, 4]


def test_the_race_ends_at_max_instances_in_its_round_and_at_the_budget_when_asked():
    state = RaceState.new(2, 3)
    race = resolved(warmup=3, max_instances=3, budget=6)
    record(state, next_work(state, race), outcome(np.ones(6)))
    report = decide(state, race)  # every survivor has max_instances: the race ends here
    assert report.done and report.stage_end == "max_instances"
    assert state.done and state.stop_reason == "max_instances" and next_work(state, race) is None
    small = RaceState.new(2, 5)
    race = resolved(warmup=3, max_instances=5, budget=7)
    record(small, next_work(small, race), outcome(np.ones(6)))
    assert not decide(small, race).done
    assert next_work(small, race) is None and small.stop_reason == "budget" and small.done


def test_failed_and_diverged_statuses():
    # finite and ok: 1.0, 1e12, 1.2, 0.9 and 2 DIVERGED_FACTOR: median 1.2
    losses = [1.0, np.nan, 2.0, 1e12, 1.2, 0.9, 2 * DIVERGED_FACTOR]
    ok = np.array([True, True, False, True, True, True, True])
    state = RaceState.new(7, 2)
    record(state, Work(np.arange(7), np.zeros(7, int)), outcome(losses, ok))
    rows = state.ledger.frame()
    assert rows.status.tolist() == ["ok", "failed", "failed", "diverged", "ok", "ok", "diverged"]
    loss = rows.loss.tolist()
    assert loss[1] == np.inf and loss[2] == np.inf and loss[3] == 1e12  # a diverged loss counts
    assert state.ledger.losses[3, 0] == 1e12 and np.isinf(state.ledger.losses[1, 0])
    assert rows.rmse.tolist()[0] == 2.0  # the metrics are columns of the same rows


def test_decide_keeps_n_winners_and_writes_path_and_history_once():
    race = resolved(rule="halving", statistic="mean", warmup=1, max_instances=4, n_winners=2)
    state = RaceState.new(4, 4)
    record(state, next_work(state, race), outcome([1.0, 2.0, 3.0, 4.0]))
    assert not decide(state, race).removed  # the warm-up round: nobody leaves
    assert state.alive.all() and not state.done
    record(state, next_work(state, race), outcome([1.0, 2.0, 3.0, 4.0]))
    report = decide(state, race)
    assert report.removed == {2: "rule", 3: "rule"} and state.done
    assert state.stop_reason == "winners"
    assert state.history[-1]["eliminated"] == [2, 3] and state.history[-1]["remaining"] == 2
    assert len(state.path) == 8 and [p["alive"] for p in state.path[-4:]] == [1, 1, 0, 0]
    assert [p["reason"] for p in state.path[-4:]] == ["", "", "rule", "rule"]


def test_finalists_are_cut_in_the_round_that_ends_the_racing_stage():
    """The cut to the n_winners finalists enters the round's own rows (never rewritten later)."""
    race = resolved(
        rule="halving", statistic="mean", warmup=2, max_instances=2, n_winners=2,
        final_instances=3,
    )  # fmt: skip
    state = RaceState.new(4, 2)
    record(state, next_work(state, race), outcome([1.0, 1.1, 2.0, 2.1, 3.0, 3.1, 4.0, 4.1]))
    path_before, history_before = len(state.path), len(state.history)
    report = decide(state, race)
    assert report.stage_end == "max_instances" and report.removed == {
        2: "finalists",
        3: "finalists",
    }
    assert len(state.path) == path_before + 4 and len(state.history) == history_before
    assert state.history[-1]["eliminated"] == [2, 3]
    assert [p["alive"] for p in state.path] == [True, True, False, False]
    assert state.stage_kind == "final" and state.stop_reason == "max_instances"
    work = next_work(state, race)
    assert list(work.model_ids) == [0, 0, 0, 1, 1, 1] and list(work.instances) == [2, 3, 4] * 2
    rows = list(map(dict, state.path))
    record(state, work, outcome(np.ones(6)))
    final = decide(state, race)
    assert final.done and final.stage_end == "final" and state.path[: len(rows)] == rows


def test_checkpoint_round_trip_is_exact_and_data_only(tmp_path):
    race = resolved(rule="halving", statistic="std", warmup=2, max_instances=4)
    state = RaceState.new(3, 4)
    record(state, next_work(state, race), outcome([1.0, 1.2, np.nan, 2.0, 1e12, 0.5]))
    decide(state, race)
    save_state(state, tmp_path / "c.npz", "abc", {"trainer": "jax"})
    with np.load(tmp_path / "c.npz", allow_pickle=False) as f:  # no pickled member at all
        assert all(f[k].dtype != object for k in f.files)
        assert "losses" not in f.files  # the tables are rebuilt from the ledger's rows
    back, meta = load_state(tmp_path / "c.npz", "abc")
    np.testing.assert_array_equal(back.ledger.losses, state.ledger.losses)
    np.testing.assert_array_equal(back.ledger.mask, state.ledger.mask)
    pd.testing.assert_frame_equal(back.ledger.frame(), state.ledger.frame())
    pd.testing.assert_frame_equal(pd.DataFrame(back.path), pd.DataFrame(state.path))
    assert back.history == state.history and back.round == state.round
    assert meta["definition"] == {"trainer": "jax"} and peek(tmp_path / "c.npz")["round"] == 1
    models = pd.DataFrame({"model_id": range(3), "name": list("abc")})
    result = SelectionResult.from_state(back, race, models)
    assert isinstance(result, SelectionResult) and not result.finished
    with pytest.raises(CheckpointMismatch, match="belongs to a different race"):
        load_state(tmp_path / "c.npz", "other")


def test_the_ledger_tables_are_rebuilt_from_its_rows():
    ledger = Ledger(3)
    ledger.enter(np.array([0, 2]), np.array([1, 4]), np.array([0.5, np.inf]))
    ledger.append({"model_id": np.array([0, 2]), "instance": np.array([1, 4]),
                   "loss": np.array([0.5, np.inf])})  # fmt: skip
    back = Ledger.from_frame(3, ledger.frame())
    np.testing.assert_array_equal(back.losses, ledger.losses)
    np.testing.assert_array_equal(back.mask, ledger.mask)
    assert back.mask.sum() == 2 and back.losses.shape == (3, 5)


def test_damaged_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "c.npz").write_bytes(b"PK\x03\x04 not a zip at all")
    with pytest.raises(CheckpointError, match="damaged.*delete it"):
        load_state(tmp_path / "c.npz", "abc")
