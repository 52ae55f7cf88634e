"""The jrobust command end to end on a tiny space: run folders, kill and resume, bad input."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

import jrobust
from jrobust import __version__, runfolder
from jrobust._src.cli import UsageError, main
from jrobust._src.race.checkpoint import peek

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# One cohort of 4 tiny MLPs: warm-up 2 (8 instances), then halving 4 -> 2 -> 1 (stacks of 4).
TINY_SPACE = """
[base]
model = "mlp"
hidden = [8]
epochs = 2
train_size = 200
batch_size = 50
loss = "mse"
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
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    x = rng.random((500, 6, 6, 1)).astype(np.float32)
    w = np.linspace(0.5, 1.5, 36).reshape(6, 6, 1)
    y = 1.0 + (x * w).mean(axis=(1, 2, 3)) + 0.01 * rng.standard_normal(500)
    np.savez(folder / "tiny.npz", x=x, y=y.astype(np.float32), target_names=np.array(["energy"]))
    (folder / "tiny.toml").write_text(TINY_SPACE)
    (folder / "bad.toml").write_text('[base]\nmodel = "mlp"\nepochs = \n')
    cache = folder / "jax-cache"
    old = os.environ.get("JROBUST_CACHE_DIR")
    os.environ["JROBUST_CACHE_DIR"] = str(cache)  # subprocesses reuse the programs compiled here
    yield folder
    if old is None:
        os.environ.pop("JROBUST_CACHE_DIR", None)
    else:
        os.environ["JROBUST_CACHE_DIR"] = old


def tiny_args(files, *more):
    return [
        "run",
        "--space",
        str(files / "tiny.toml"),
        "--data",
        f"npz:{files / 'tiny.npz'}",
        *more,
    ]


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def reference(files):
    """An uninterrupted run of the tiny space (other tests compare against it)."""
    out = files / "runs" / "reference"
    assert main(tiny_args(files, "--out", str(out), "--csv")) == 0
    return out


def test_run_end_to_end(files, reference, capsys):
    folder = reference
    for name in (
        "config.toml",
        "checkpoint.npz",
        "result.json",
        "summary.md",
        "report.html",
        "path.png",
        "distributions.png",
    ):
        assert (folder / name).is_file(), name
    for table in runfolder.TABLES:
        frame = pd.read_parquet(folder / f"{table}.parquet")
        assert len(frame) > 0, table
        assert len(pd.read_csv(folder / f"{table}.csv")) == len(frame)
    ledger = pd.read_parquet(folder / "ledger.parquet")
    assert len(ledger) == 4 * 2 + 4 + 2 * 2  # warm-up, 4 models x 1, 2 models x 2
    assert set(ledger.status) == {"ok"}
    for png in ("path.png", "distributions.png"):
        assert (folder / png).read_bytes().startswith(PNG_MAGIC)
        assert matplotlib.image.imread(folder / png).shape[0] > 100
    payload = json.loads((folder / "result.json").read_text())
    page = (folder / "report.html").read_text()
    assert payload["winner_name"] in page and page.count("data:image/png;base64,") == 2
    # the same command again continues the (finished) run: nothing is retrained
    code, out, err = cli(capsys, *tiny_args(files, "--out", str(folder), "--json"))
    assert code == 0 and err == ""
    summary = json.loads(out)
    assert summary["winner"]["model_id"] == payload["winner_id"]
    assert summary["n_trainings"] == len(ledger) and summary["run_folder"] == str(folder)
    # the resolved configuration reruns the race
    code, out, _ = cli(
        capsys,
        "run",
        "--space",
        str(folder / "config.toml"),
        "--out",
        str(files / "runs" / "again"),
        "--quiet",
    )
    assert code == 0
    assert out.count("\n") == 1 and out.startswith(f"winner: model {payload['winner_id']} ")
    again = pd.read_parquet(files / "runs" / "again" / "ledger.parquet")
    np.testing.assert_allclose(again.loss, ledger.loss, rtol=1e-6)


def test_report_command_rebuilds_the_folder(reference, capsys):
    for name in ("report.html", "summary.md", "path.png"):
        (reference / name).unlink()
    code, out, _ = cli(capsys, "report", str(reference))
    assert code == 0 and "report.html" in out
    assert (reference / "report.html").is_file() and (reference / "path.png").is_file()
    assert "Winner" in (reference / "summary.md").read_text()


# The command, with every checkpoint write followed by a long pause: the test kills it there.
_SLOW_RACE = """
import sys, time
import jrobust.cli
from jrobust._src.race.race import Race
save = Race.save
def save_and_hold(self, *args, **kwargs):
    out = save(self, *args, **kwargs)
    time.sleep(120)
    return out
Race.save = save_and_hold
sys.exit(jrobust.cli.main(sys.argv[1:]))
"""


def test_killed_run_resumes_to_the_uninterrupted_result(files, reference, capsys):
    folder = files / "runs" / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_RACE, *tiny_args(files, "--out", str(folder))],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    checkpoint = folder / "checkpoint.npz"
    try:
        deadline = time.monotonic() + 120
        while not checkpoint.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state = peek(checkpoint)
    assert state["round"] == 1 and not state["done"]
    assert not (folder / "result.json").exists()

    # an unfinished run can be reported from its checkpoint
    code, out, _ = cli(capsys, "report", str(folder))
    assert code == 0 and "unfinished" in out
    assert "Unfinished run" in (folder / "report.html").read_text()

    code, out, err = cli(capsys, "run", "--resume", str(folder), "--json")
    assert code == 0, err
    resumed = pd.read_parquet(folder / "ledger.parquet")
    uninterrupted = pd.read_parquet(reference / "ledger.parquet")
    pd.testing.assert_frame_equal(
        resumed[["model_id", "instance", "round", "status"]],
        uninterrupted[["model_id", "instance", "round", "status"]],
    )
    np.testing.assert_allclose(resumed.loss, uninterrupted.loss, rtol=1e-6)
    ref = json.loads((reference / "result.json").read_text())
    got = json.loads((folder / "result.json").read_text())
    assert (got["winner_id"], got["winners"]) == (ref["winner_id"], ref["winners"])
    assert json.loads(out)["winner"]["model_id"] == ref["winner_id"]

    # a checkpoint of a different race, or of another version, is refused with one line
    other = files / "runs" / "other"
    shutil.copytree(folder, other)
    text = (other / "config.toml").read_text().replace("seed = 0", "seed = 7")
    (other / "config.toml").write_text(text)
    code, _, err = cli(capsys, "run", "--resume", str(other))
    assert code == 2 and "belongs to a different race" in err and err.count("\n") == 1
    (other / "config.toml").write_text(
        text.replace(f'version = "{__version__}"', 'version = "0.0.1"')
    )
    code, _, err = cli(capsys, "run", "--resume", str(other))
    assert code == 2 and "made by jrobust 0.0.1" in err


def _bad_cases(files, reference):
    tiny = tiny_args(files)
    return [
        (["run", "--space", str(files / "bad.toml")], f"{files / 'bad.toml'}:3: malformed TOML"),
        (["run", "--space", str(files / "missing.toml")], "no such space file"),
        (["run", "--statistic", "average"], "unknown statistic 'average'"),
        (["run", "--rule", "thirds"], "unknown rule 'thirds'"),
        (["run", "--data", "mnist"], "unknown data set 'mnist'"),
        (["run", "--warmup", "zero"], "expected a positive integer"),
        (["run", "--alpha", "0.1"], "alpha applies to the test rules"),
        (["run", "--rule", "welch", "--warmup", "1"], "too small for rule 'welch'"),
        (
            ["run", "--data", "tfds:mnist", "--data-dir", str(files / "no-such-dir")],
            "does not exist",
        ),
        (["run", "--data", "npz:" + str(files / "none.npz")], "no such .npz file"),
        ([*tiny, "--target", "charge"], "unknown target 'charge'"),
        (
            [*tiny, "--out", str(reference), "--seed", "5"],
            "holds a different run (it differs in race.seed)",
        ),
        (["run", "--resume", str(files)], "no config.toml there"),
        (["run", "--resume", str(reference), "--seed", "1"], "drop --seed"),
        (["report", str(files / "nowhere")], "no such run folder"),
        (["bench", "--stacks", "0"], "expected positive stack sizes"),
        (["bench", "--torch", "--model", "2"], "compares the paper's model 1 only"),
        (["bench", "--stack-mode", "sideways"], "stack_mode must be"),
        (["bench", "--torch-processes", "-1"], "expected an integer >= 0"),
        (["run", "--fidelity", "200,100"], "must increase strictly"),
        (["run", "--fidelity", "a,b"], "increasing training sizes"),
        (["run", "--elites", "-1"], "expected an integer >= 0"),
        (["run", "--final-instances", "x"], "expected an integer >= 0"),
        ([*tiny, "--fidelity", "20,200"], "smaller than the largest batch size of the space (50"),
        ([*tiny, "--fidelity", "100,100000"], "larger than the population's training pool"),
        (["run", "--over", "transforms"], "takes the statistics over transformed test sets"),
        (["run", "--over", "angles"], "invalid choice: 'angles'"),
        (["run", "--rotation", "a,b"], "expected numbers separated by commas"),
        (["run", "--scale", "0,1"], "scale factors must be positive"),
        (["fly"], "invalid choice: 'fly'"),
    ]


def test_transformed_test_sets_from_the_command_line(files, capsys):
    folder = files / "runs" / "rotations"
    argv = ["--rotation", "0,90", "--scale", "1,1.5", "--over", "transforms", "--json"]
    code, out, err = cli(capsys, *tiny_args(files, "--out", str(folder), *argv))
    assert code == 0, err
    config = runfolder.read_config(folder)
    assert config["data"]["rotation"] == [0.0, 90.0] and config["race"]["over"] == "transforms"
    ledger = pd.read_parquet(folder / "ledger.parquet")
    base = ledger[ledger["transform"] == "none"].set_index(["model_id", "instance"]).loss
    same = ledger[(ledger["transform"] == "rotation") & (ledger["param"] == 0.0)]
    np.testing.assert_array_equal(same.set_index(["model_id", "instance"]).loss, base)
    assert len(ledger) == 5 * len(base)
    summary = (folder / "summary.md").read_text()
    assert "transformed test sets: rotation 0, 90; scale 1, 1.5" in summary
    assert "## Transformed test sets" in summary and "over transforms" in summary
    assert (folder / "transforms.png").is_file()


def test_fidelity_elites_and_final_race_from_the_command_line(files, capsys):
    """One small end-to-end check of the JAX trainer at the fidelity sizes."""
    folder = files / "runs" / "fidelity"
    argv = ["--fidelity", "100,200", "--winners", "2", "--final-instances", "2", "--elites", "1"]
    code, out, err = cli(capsys, *tiny_args(files, "--out", str(folder), "--json", *argv))
    assert code == 0, err
    race = runfolder.read_config(folder)["race"]
    assert (race["fidelity"], race["elites"], race["final_instances"], race["n_winners"]) == (
        [100, 200], 1, 2, 2,
    )  # fmt: skip
    ledger = pd.read_parquet(folder / "ledger.parquet")
    # stage 0 at 100 events: warm-up 2, then 4 -> 2 = n_winners: straight to the final race at 200
    # (`stage` is the stage's number, as in result.json's stages; `stage_kind` says race/final)
    assert ledger.groupby(["stage", "stage_kind", "train_size"]).size().to_dict() == {
        (0, "race", 100): 12,
        (2, "final", 200): 4,
    }
    stages = json.loads((folder / "result.json").read_text())["stages"]
    assert [(s["stage"], s["kind"]) for s in stages] == [(0, "race"), (2, "final")]
    final = ledger[ledger.stage_kind == "final"]
    assert final.instance.min() == 3 and sorted(json.loads(out)["winners"]) == sorted(
        final.model_id.unique()
    )
    history = pd.read_parquet(folder / "history.parquet")
    assert history.stage_kind.tolist() == ["race", "race", "final"]
    assert history.train_size.tolist() == [100, 100, 200]
    summary = (folder / "summary.md").read_text()
    assert "fidelity stages at training sizes 100, 200" in summary and "## Stages" in summary
    assert "final race: the 2 finalists on 2 fresh instances each" in summary
    assert "elites 1 (the best 1 by" in summary
    page = (folder / "report.html").read_text()
    assert "<h2>Stages</h2>" in page and "fidelity stages at training sizes 100, 200" in page
    # the engine trained instance 0 of stage 0 exactly as a model of train_size 100 trains alone
    run = runfolder.load_run(folder)
    row = ledger[(ledger.stage_kind == "race") & (ledger.instance == 0)].iloc[0]
    config = dataclasses.replace(run.configs[int(row.model_id)], train_size=100)
    pop = jrobust.data.load(f"npz:{files / 'tiny.npz'}")
    alone = jrobust.train_instances(config, pop, [0])
    np.testing.assert_allclose(np.asarray(alone["loss"])[0], row.loss, rtol=1e-5)


def test_bad_input_gives_one_line_and_exit_2(files, reference, capsys):
    for argv, message in _bad_cases(files, reference):
        code, out, err = cli(capsys, *argv)
        assert code == 2, (argv, err)
        assert message in err, (argv, err)
        assert err.startswith("jrobust: error: ") and err.count("\n") == 1, err
        assert "Traceback" not in err and out == ""


def test_debug_shows_the_traceback(files):
    with pytest.raises(UsageError, match="unknown statistic"):
        main(["--debug", "run", "--statistic", "average"])
    with pytest.raises(UsageError, match="malformed TOML"):
        main(["run", "--space", str(files / "bad.toml"), "--debug"])


def test_help_shows_examples(capsys):
    for argv in (
        ["--help"],
        ["run", "--help"],
        ["report", "--help"],
        ["bench", "--help"],
        ["space", "--help"],
    ):
        code, out, _ = cli(capsys, *argv)
        assert code == 0 and "examples:" in out and "jrobust" in out, argv
    code, out, _ = cli(capsys, "--version")
    assert code == 0 and __version__ in out


def test_space_command_lists_models(files, capsys):
    code, out, _ = cli(
        capsys, "space", str(files / "tiny.toml"), "--data", f"npz:{files / 'tiny.npz'}"
    )
    assert code == 0 and out.startswith("4 models in 1 cohorts")
    code, out, _ = cli(capsys, "space", "--json")
    models = json.loads(out)
    assert len(models) == 16 and models[0]["params"] == 23923  # the paper's model 1


RANGED_SPACE = """
[base]
model = "mlp"
hidden = [8, 8]
epochs = 1

[choices]
learning_rate = { loguniform = [1e-4, 1e-1] }
hidden = { intrange = [4, 16] }
optimizer = ["adam", "sgd"]
"""


def test_space_command_on_a_space_with_ranges(files, tmp_path, capsys):
    path = tmp_path / "ranged.toml"
    path.write_text(RANGED_SPACE)
    data = f"npz:{files / 'tiny.npz'}"
    code, out, err = cli(capsys, "space", str(path), "--data", data)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("a space with ranges: 3 parameters") and "--budget" in lines[0]
    rows = {line.split()[0]: line.split(maxsplit=1)[1] for line in lines[2:5]}
    assert (
        rows["learning_rate"].startswith("loguniform(0.0001, 0.1)")
        and "scalar" in rows["learning_rate"]
    )
    assert rows["hidden"].startswith("intrange(4, 16)") and "width" in rows["hidden"]
    assert rows["optimizer"].startswith("adam, sgd") and "static" in rows["optimizer"]
    widest = jrobust.zoo.mlp_config(hidden=(16, 16))  # every hidden layer at the high end
    assert lines[5] == (
        f"widest shapes: 2 static variants, at most "
        f"{jrobust.count_params(widest, (6, 6, 1)):,} parameters (inputs 6x6x1)"
    )
    code, out, _ = cli(capsys, "space", str(path), "--data", data, "--json")
    record = json.loads(out)
    assert code == 0 and record["finite"] is False and len(record["envelope"]) == 2
    assert [(p["parameter"], p["role"]) for p in record["parameters"]] == [
        ("learning_rate", "scalar"),
        ("hidden", "width"),
        ("optimizer", "static"),
    ]
    assert record["parameters"][1] == {
        "parameter": "hidden",
        "role": "width",
        "range": "intrange(4, 16)",
        "low": 4,
        "high": 16,
        "log": False,
        "integer": True,
    }
    path.write_text(RANGED_SPACE.replace("loguniform = [1e-4, 1e-1]", "loguniform = [0, 1e-1]"))
    code, _, err = cli(capsys, "space", str(path), "--data", data)
    assert code == 2 and "ranged.toml:8: [choices] learning_rate: loguniform" in err


def test_bench_command(capsys):
    code, out, err = cli(
        capsys, "bench", "--stacks", "2", "--steps", "2", "--batch-size", "8", "--json"
    )
    assert code == 0, err
    record = json.loads(out)
    (row,) = record["rows"]
    assert row["stack"] == 2 and row["steps"] == 2 and row["instance_steps_per_s"] > 0
    assert row["repeats"] == 1 and record["step_gflop"] == pytest.approx(127_700_352 / 8 / 1e9)


def test_python_dash_m(files):
    done = subprocess.run(
        [sys.executable, "-m", "jrobust", "run", "--rule", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.startswith("jrobust: error: ") and done.stdout == ""
