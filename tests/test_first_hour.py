"""The first hour of a user: progress that can be followed (on a terminal, in a log, from
Python), a short ModelConfig repr that leaves the hashes alone, classification without five
tries, "did you mean", and one meaning of ``stage``."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import small_cnn

import jrobust
from jrobust import runfolder
from jrobust._src import presets as zoo
from jrobust._src.cli import main
from jrobust._src.config import ModelConfig, model_hash
from jrobust._src.settings import RaceSettings
from jrobust._src.space.files import SpaceError, build_space

TINY = """
[base]
model = "mlp"
hidden = [8]
epochs = 2
train_size = 200
batch_size = 50
metric = "rmse"
target = "energy"

[choices]
learning_rate = [3e-3, 3e-2]
l2 = [0.0, 0.01]

[race]
warmup = 2
max_instances = 5
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("first-hour")
    rng = np.random.default_rng(0)
    x = rng.random((500, 6, 6, 1)).astype(np.float32)
    y = 1.0 + x.mean(axis=(1, 2, 3)) + 0.01 * rng.standard_normal(500)
    np.savez(folder / "tiny.npz", x=x, y=y.astype(np.float32), target_names=np.array(["energy"]))
    (folder / "tiny.toml").write_text(TINY)
    return folder


# ------------------------------------------------------------------------------ progress
def test_without_a_terminal_a_header_one_line_per_round_and_the_report(files, capsys):
    out = files / "runs" / "plain"
    argv = ["run", "--space", str(files / "tiny.toml"), "--data", f"npz:{files / 'tiny.npz'}"]
    assert main([*argv, "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    history = pd.read_parquet(out / "history.parquet")
    assert lines[0].startswith("jrobust run: 4 models in 1 cohorts on tiny")
    assert lines[1].startswith("rule halving on max, warm-up 2, at most 5 instances")
    rounds = [ln for ln in lines if ln.startswith("round ")]
    assert len(rounds) == len(history) and rounds[0].startswith("round 1 (warm-up): 4 -> 4 models")
    assert any(ln.startswith("winner and runners-up (the test rmse") for ln in lines)
    assert lines[-1].startswith("winner: model ") and lines[-1].endswith(
        f"report: {out / 'report.html'}"
    )
    summary = (out / "summary.md").read_text()
    assert "partly at the same time (the next program compiles while one trains)" in summary


def test_a_round_line_says_compiling_overlaps_training():
    from jrobust._src.cli.console import round_line

    info = dict(
        round=1, survivors=16, eliminated=0, trained=48, seconds=68.0, compile_seconds=194.0,
        n_trainings=48, train_size=0, stage_kind="race",
    )  # fmt: skip
    line = round_line(info, {}, 98.2)
    assert line == (
        "round 1 (warm-up): 16 -> 16 models, trained 48 instances in 1m08s, compiling 3m14s "
        "alongside, 48 in all, 98 instance-steps/s"
    )
    assert "compiling" not in round_line({**info, "compile_seconds": 0.0, "round": 2}, {}, 98.2)
    final = round_line({**info, "round": 7, "stage_kind": "final"}, {}, 1.0)
    assert final.startswith("round 7 (final race): ")


class Recorder:
    """A progress callback that also takes the engine's events inside a round."""

    def __init__(self):
        self.rounds, self.events = [], []

    def __call__(self, info):
        self.rounds.append(info)
        self.events.append(("round", info["round"]))

    def event(self, info):
        self.events.append(info)


def test_engine_events_inside_a_round(toy_population):
    space = jrobust.SearchSpace(small_cnn(), learning_rate=[1e-3, 1e-2], conv=[(4,), (6,)])
    rec = Recorder()
    result = jrobust.race(
        space, toy_population, warmup=2, max_instances=3, progress=rec, merge="none"
    )
    first = rec.events[: rec.events.index(("round", 1))]
    programs = [e for e in first if e["event"] == "program"]
    trained = [e for e in first if e["event"] == "trained"]
    assert [(e["program"], e["programs"]) for e in programs] == [(1, 2), (2, 2)]
    assert programs[0]["compiling"]  # the first round compiles
    assert sum(e["instances"] for e in programs) == result.history.trained.iloc[0] == 8
    assert [e["stacks"] for e in trained] == list(range(1, len(trained) + 1))
    assert trained[-1]["instances"] == trained[-1]["total"] == 8
    assert [r["round"] for r in rec.rounds] == list(result.history["round"])


def test_race_progress_true_shows_the_command_lines_display(capsys):
    def ev(m, i):
        return 1.0 + np.asarray(m) / 10 + 0.1 * np.sin(np.asarray(i) + np.asarray(m))

    result = jrobust.race(4, evaluator=ev, warmup=2, progress=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("jrobust race: 4 models")
    assert sum(ln.startswith("round ") for ln in lines) == len(result.history)
    assert lines[-1].startswith(f"winner: model {result.winner_id} 'model{result.winner_id}'")
    jrobust.race(4, evaluator=ev, warmup=2, progress=False)
    jrobust.race(4, evaluator=ev, warmup=2)  # not a terminal: the default shows nothing
    assert capsys.readouterr().out == ""
    seen = []
    jrobust.race(4, evaluator=ev, warmup=2, progress=seen.append)  # a callable: as before
    assert seen and isinstance(seen[0], dict) and seen[0]["round"] == 1


# ------------------------------------------------------------------------------ ModelConfig repr
def test_modelconfig_repr_shows_what_differs_from_the_defaults():
    assert repr(ModelConfig()) == "ModelConfig()"
    config = zoo.paper_config(2, epochs=3, train_size=2000, learning_rate=3e-3)
    text = repr(config)
    assert len(text) < 250 and "momentum" not in text and "b2" not in text
    assert "learning_rate=0.003" in text and "weight_decay=0.1" in text and "name='paper2'" in text
    small = repr(zoo.cnn_config(conv=(8,), pool=(2,), dense=(16,)))
    assert small == "ModelConfig(architecture=CNN(conv=(8,), pool=(2,), dense=(16,)))"
    assert config.full_repr().startswith("ModelConfig(architecture=CNN(conv=(32, 64), kernel=3")
    assert len(config.full_repr()) > 500


# Computed with jrobust 0.2.0 before the short repr: the hashes seed every instance's
# initialisation and the fingerprint keys every checkpoint, so neither may move.
HASHES = [1962337823, 1755482329, 2042291477, 39261762, 408503223, 301599352, 1667471662]
FINGERPRINT = "d9b4fc55b5ff2d92980236c10648af2052413289"


def _hashed_configs():
    return [
        zoo.paper_config(1),
        zoo.paper_config(2, epochs=3, train_size=2000, learning_rate=3e-3),
        zoo.cnn_config(
            conv=(16, 32), pool=(2, "global"), dense=(64,), outputs=10, loss="cross_entropy",
            metric="accuracy", epochs=10,
        ),
        zoo.mlp_config(hidden=(8,), epochs=2, train_size=200, batch_size=50, target="energy"),
        zoo.riesz_config(),
        zoo.nas_config(1),
        ModelConfig(augment="rotate", augment_range=30.0),
    ]  # fmt: skip


def test_model_hashes_and_race_fingerprints_are_unchanged():
    from jrobust._src.race.checkpoint import race_fingerprint

    configs = _hashed_configs()
    assert [model_hash(c) for c in configs] == HASHES
    key = race_fingerprint(RaceSettings().resolved(), configs, len(configs), None, version="0.2.0")
    assert key == FINGERPRINT


# ------------------------------------------------------------------------------ classification
def test_race_on_digits_by_name_fits_the_regression_defaults_once():
    base = zoo.cnn_config(conv=(4,), pool=(2,), dense=(8,), epochs=1, train_size=100, batch_size=50)
    space = jrobust.SearchSpace(base, learning_rate=[1e-3, 1e-2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = jrobust.race(space, "digits", warmup=2, max_instances=2, progress=False)
    said = [str(w.message) for w in caught if "classification set" in str(w.message)]
    assert (
        len(said) == 1
        and "2 models race with loss='cross_entropy', metric='cross_entropy', outputs=10" in said[0]
    )
    assert result.winner.loss == "cross_entropy" and result.winner.architecture.outputs == 10
    assert result.ledger.loss.notna().all() and len(result.ledger) == 4


def test_the_command_line_fits_a_space_file_to_digits_and_says_so(tmp_path, capsys):
    space = tmp_path / "cnn.toml"
    space.write_text(
        '[base]\nmodel = "cnn"\nconv = [4]\npool = [2]\ndense = [8]\nepochs = 1\n'
        "train_size = 100\nbatch_size = 50\n[choices]\nlearning_rate = [1e-3, 1e-2]\n"
    )
    out = tmp_path / "run"
    argv = ["run", "--space", str(space), "--data", "digits", "--warmup", "2", "--out", str(out)]
    assert main([*argv, "--max-instances", "2"]) == 0
    printed, err = capsys.readouterr()
    assert printed.splitlines()[0] == (
        "digits is a classification set: 2 models race with loss='cross_entropy', "
        "metric='cross_entropy', outputs=10 (set loss, metric and outputs in the space file to "
        "choose otherwise)"
    )
    assert err == ""  # said once, as a line of the run, not as a Python warning
    assert "the test cross_entropy of each instance" in (out / "summary.md").read_text()


def test_a_mismatch_lists_every_change_at_once():
    digits = jrobust.data.digits()
    config = zoo.cnn_config(conv=(4,), pool=(2,), dense=(8,), loss="rmse", metric="rmse")
    with pytest.raises(ValueError) as err:
        jrobust.race([config], digits, progress=False)
    message = str(err.value)
    for change in ("loss='cross_entropy'", "metric='cross_entropy'", "outputs=10"):
        assert change in message
    # a classification metric alone brings its loss; the loss alone its metric
    assert zoo.cnn_config(metric="accuracy").loss == "cross_entropy"
    assert zoo.mlp_config(loss="cross_entropy").metric == "cross_entropy"
    with pytest.raises(ValueError, match="mix classification and regression"):
        ModelConfig(loss="mse", metric="accuracy")


def test_the_command_line_and_race_take_the_same_data_names():
    from jrobust._src.cli.options import data_spec as cli_data_spec
    from jrobust._src.specs import data_spec

    for name in ("calo-a", "Calo-B", "calorimeter-b", "digits", "tfds:mnist", "npz:x.npz"):
        assert cli_data_spec(name) == data_spec(name)
    with pytest.raises(ValueError, match="population: unknown data set 'digts' .*'digits'"):
        jrobust.race(jrobust.SearchSpace(ModelConfig()), "digts")


# ------------------------------------------------------------------------------ did you mean
@pytest.mark.parametrize(
    ("call", "error", "hint"),
    [
        (lambda: zoo.mlp_config(hiden=(8,)), TypeError, "'hiden' (did you mean 'hidden'?)"),
        (lambda: zoo.cnn_config(learnig_rate=1e-3), TypeError, "(did you mean 'learning_rate'?)"),
        (lambda: ModelConfig(lerning_rate=1e-3), TypeError, "(did you mean 'learning_rate'?)"),
        (lambda: RaceSettings(statistic="maks"), ValueError, "(did you mean 'max'?)"),
        (lambda: RaceSettings(rule="halvng"), ValueError, "(did you mean 'halving'?)"),
        (lambda: RaceSettings.of(None, warmpu=3), TypeError, "(did you mean 'warmup'?)"),
        (lambda: jrobust.get_statistic("meen"), ValueError, "(did you mean 'mean'?)"),
        (lambda: jrobust.get_rule("welsh"), ValueError, "(did you mean 'welch'?)"),
        (
            lambda: build_space({"base": {"model": "paper1"}, "choices": {"lerning_rate": [1]}}),
            SpaceError,
            "(did you mean 'learning_rate'?)",
        ),
    ],
)
def test_did_you_mean(call, error, hint):
    with pytest.raises(error) as err:
        call()
    assert hint in str(err.value)


# ------------------------------------------------------------------------------ stage
def staged(models, instances, sizes):
    return 1 + np.asarray(models) / 10 + np.sin(np.asarray(instances)) / 20 + 5 / np.sqrt(sizes)


STAGED = dict(warmup=2, fidelity=[100, 200, 400], n_winners=2, final_instances=3, progress=False)


def test_stage_is_the_stage_number_everywhere():
    result = jrobust.race(12, evaluator=staged, **STAGED)
    numbers = [s["stage"] for s in result.stages]
    kinds = {s["stage"]: s["kind"] for s in result.stages}
    assert numbers == [0, 1, 2, 3] and kinds[3] == "final"  # every size ran, then the final race
    for frame in (result.ledger, result.history, result.path):
        assert set(frame["stage"]) <= set(numbers)
        assert all(kinds[s] == k for s, k in zip(frame["stage"], frame["stage_kind"], strict=True))
    sizes = result.ledger.groupby("stage")["train_size"].unique()
    assert [list(v) for v in sizes] == [[100], [200], [400], [400]]


def test_old_run_folders_and_checkpoints_with_the_kind_in_stage_still_read(tmp_path):
    result = jrobust.race(12, evaluator=staged, **STAGED)
    folder = runfolder.save_run(result, tmp_path / "old", figures=False)
    for table in ("ledger", "history", "path"):  # as jrobust 0.2.0 wrote them
        frame = pd.read_parquet(folder / f"{table}.parquet")
        frame["stage"] = frame.pop("stage_kind")
        frame.to_parquet(folder / f"{table}.parquet")
    back = runfolder.load_run(folder)
    for table in ("ledger", "history", "path"):
        new, old = getattr(result, table), getattr(back, table)
        pd.testing.assert_series_equal(
            new["stage"].astype(int), old["stage"].astype(int), check_names=False
        )
        assert list(new["stage_kind"]) == list(old["stage_kind"])
    # a checkpoint of 0.2.0 (format 2): the tables as arrays, the kind in `stage`
    from jrobust._src.race.checkpoint import load_state

    partial = jrobust.race(12, evaluator=staged, checkpoint_dir=tmp_path / "ck", **STAGED)
    path = tmp_path / "ck" / "checkpoint.npz"
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(bytes(arrays.pop("meta")).decode())
    state, _ = load_state(path)
    for prefix in ("ledger", "path"):
        arrays[f"{prefix}.stage"] = arrays.pop(f"{prefix}.stage_kind")
    for row in meta["history"]:
        row["stage"] = row.pop("stage_kind")
    meta["format"] = 2
    arrays |= {"losses": state.ledger.losses, "mask": state.ledger.mask}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)
    again, _ = load_state(path)
    frame = again.ledger.frame()
    columns = (frame.model_id, frame.instance, frame["stage"], frame["stage_kind"])
    rows = sorted(zip(*columns, strict=True))
    led = partial.ledger
    assert rows == sorted(
        zip(led.model_id, led.instance, led["stage"], led["stage_kind"], strict=True)
    )
    assert [h["stage"] for h in again.history] == list(partial.history["stage"])
    assert {r[3] for r in rows} == {"race", "final"} and {r[2] for r in rows} == {0, 1, 2, 3}
