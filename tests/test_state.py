"""RaceState: the steps of a round, the ledger's statuses, and data-only checkpoints."""

import numpy as np
import pandas as pd
import pytest

from jrobust.result import SelectionResult
from jrobust.rules import Halving
from jrobust.settings import RaceSettings
from jrobust.state import (
    DIVERGED_FACTOR,
    CheckpointError,
    CheckpointMismatch,
    Outcome,
    RaceState,
    Work,
)
from jrobust.stats import get_statistic

STD, MEAN = get_statistic("std"), get_statistic("mean")


def outcome(losses, ok=None):
    losses = np.asarray(losses, float)
    return Outcome(losses, {"rmse": losses * 2}, np.ones(len(losses), bool) if ok is None else ok)


def test_plan_warmup_then_auto_then_fixed():
    settings = RaceSettings(warmup=2, max_instances=6).resolved()
    state = RaceState.new(4, 6)
    work = state.plan(settings)
    assert list(work.models) == [0, 0, 1, 1, 2, 2, 3, 3] and list(work.instances) == [0, 1] * 4
    state.record(work, outcome(np.arange(8.0)))
    state.alive[:] = [True, True, False, False]
    auto = state.plan(settings)  # 4 models / 2 alive: 2 instances each keep the round as wide
    assert list(auto.models) == [0, 0, 1, 1] and list(auto.instances) == [2, 3, 2, 3]
    fixed = state.plan(settings.replace(instances_per_round=3))
    assert list(fixed.instances) == [2, 3, 4, 2, 3, 4]


def test_plan_stops_at_max_instances_and_budget():
    state = RaceState.new(2, 3)
    settings = RaceSettings(warmup=3, max_instances=3, budget=6).resolved()
    state.record(state.plan(settings), outcome(np.ones(6)))
    assert state.plan(settings) is None and state.done and state.stop_reason == "max_instances"
    small = RaceState.new(2, 5)
    settings = RaceSettings(warmup=3, max_instances=5, budget=7).resolved()
    small.record(small.plan(settings), outcome(np.ones(6)))
    assert small.plan(settings) is None and small.stop_reason == "budget"


def test_failed_and_diverged_statuses():
    # finite and ok: 1.0, 1e12, 1.2, 0.9 and 2 DIVERGED_FACTOR: median 1.2
    losses = [1.0, np.nan, 2.0, 1e12, 1.2, 0.9, 2 * DIVERGED_FACTOR]
    ok = np.array([True, True, False, True, True, True, True])
    state = RaceState.new(7, 2)
    state.record(Work(np.arange(7), np.zeros(7, int)), outcome(losses, ok))
    status = [r["status"] for r in state.records]
    assert status == ["ok", "failed", "failed", "diverged", "ok", "ok", "diverged"]
    loss = [r["loss"] for r in state.records]
    assert loss[1] == np.inf and loss[2] == np.inf and loss[3] == 1e12  # a diverged loss counts
    assert state.losses[3, 0] == 1e12 and np.isinf(state.losses[1, 0])


def test_apply_rule_keeps_n_winners_and_writes_path_and_history():
    settings = RaceSettings(warmup=1, max_instances=4, n_winners=2, final_instances=0).resolved()
    state = RaceState.new(4, 4)
    state.record(state.plan(settings), outcome([1.0, 2.0, 3.0, 4.0]))
    state.apply_rule(Halving(), MEAN, MEAN, settings)  # the warm-up round: nobody leaves
    assert state.alive.all() and not state.done
    state.record(state.plan(settings), outcome([1.0, 2.0, 3.0, 4.0]))
    removed = state.apply_rule(Halving(), MEAN, MEAN, settings)
    assert list(removed) == [2, 3] and state.done and state.stop_reason == "winners"
    assert state.history[-1]["eliminated"] == [2, 3] and state.history[-1]["remaining"] == 2
    assert len(state.path) == 8 and [p["alive"] for p in state.path[-4:]] == [1, 1, 0, 0]


def test_checkpoint_round_trip_is_exact_and_data_only(tmp_path):
    settings = RaceSettings(warmup=2, max_instances=4).resolved()
    state = RaceState.new(3, 4)
    state.record(state.plan(settings), outcome([1.0, 1.2, np.nan, 2.0, 1e12, 0.5]))
    state.apply_rule(Halving(), STD, STD, settings)
    state.save(tmp_path / "c.npz", "abc")
    with np.load(tmp_path / "c.npz", allow_pickle=False) as f:  # no pickled member at all
        assert all(f[k].dtype != object for k in f.files)
    back = RaceState.load(tmp_path / "c.npz", "abc")
    np.testing.assert_array_equal(back.losses, state.losses)
    np.testing.assert_array_equal(back.mask, state.mask)
    pd.testing.assert_frame_equal(pd.DataFrame(back.records), pd.DataFrame(state.records))
    pd.testing.assert_frame_equal(pd.DataFrame(back.path), pd.DataFrame(state.path))
    assert back.history == state.history and back.round == state.round
    assert RaceState.peek(tmp_path / "c.npz")["round"] == 1
    models = pd.DataFrame({"model_id": range(3), "name": list("abc")})
    result = back.to_result(models, settings, STD, STD)
    assert isinstance(result, SelectionResult) and not result.finished
    with pytest.raises(CheckpointMismatch, match="belongs to a different race"):
        RaceState.load(tmp_path / "c.npz", "other")


def test_damaged_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "c.npz").write_bytes(b"PK\x03\x04 not a zip at all")
    with pytest.raises(CheckpointError, match="damaged.*delete it"):
        RaceState.load(tmp_path / "c.npz", "abc")
