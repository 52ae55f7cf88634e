"""One run per folder, nothing trusted that was not checked (docs/reliability.md).

The second round of faults and bad inputs: two runs into one folder, files of a run folder that
disagree with each other, duplicate models, figures written through symlinks, Markdown that
renders as HTML, sizes and seeds that cannot work, negative losses, transformed test sets in
``train_instances``, and the small ones (SIGHUP, a full disk's message, a deleted checkpoint, an
unwritable ``--out``, damaged files, evaluators returning non-numbers, inputs without features).
Most checks use ``evaluator=`` races or a command that is refused before it trains; the few full
commands share one finished run folder.
"""

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import _faults
import numpy as np
import pandas as pd
import pytest
from conftest import small_cnn

import jrobust
import jrobust._src.runfolder
from jrobust._src import atomic as _atomic
from jrobust._src import lock as _lock
from jrobust._src.cli import main
from jrobust._src.cli import settings as cli_settings
from jrobust._src.race.checkpoint import CHECKPOINT_FILE, peek

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    yield from _faults.fault_inputs(tmp_path_factory, "faults_more")


@pytest.fixture(scope="module")
def finished(inputs):
    """One finished ``jrobust run`` of the tiny space; tests work on copies of it."""
    folder, space, data = inputs
    out = folder / "finished"
    argv = ["run", "--space", str(space), "--data", f"npz:{data}", "--out", str(out), "-q"]
    assert main(argv) == 0
    return out


def copy_of(run: Path, tmp_path: Path, name: str = "run") -> Path:
    out = tmp_path / name
    shutil.copytree(run, out)
    return out


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def dead_pid() -> int:
    """The id of a process that has ended (so no process of that id runs, for a while)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _env(folder: Path) -> dict:
    return _faults.environment(folder / "cache")


# ------------------------------------------------------------------ 1. one run per folder
# A run held where the calorimeter would be generated (after the folder is taken, before its
# configuration is written) until the test says go.
WAITING_RUN = """
import pathlib, sys, time
import jrobust.cli, jrobust._src.cli.settings as s
go = pathlib.Path(sys.argv[1])
fits = s.check_space_fits
def slow(space, pop):
    for _ in range(1200):
        if go.exists():
            break
        time.sleep(0.1)
    return fits(space, pop)
s.check_space_fits = slow
raise SystemExit(jrobust.cli.main(sys.argv[2:]))
"""


def _wait_for(predicate, seconds: float = 120.0) -> None:
    t0 = time.monotonic()
    while not predicate():
        assert time.monotonic() - t0 < seconds, "timed out"
        time.sleep(0.1)


def test_a_second_run_into_a_running_folder_is_refused(inputs, tmp_path, capsys):
    folder, space, data = inputs
    other = tmp_path / "b.toml"
    other.write_text(
        space.read_text().replace("learning_rate = [3e-3, 3e-2]", "learning_rate = [1e-2]")
    )
    out, go = tmp_path / "run", tmp_path / "go"
    first = subprocess.Popen(
        [sys.executable, "-c", WAITING_RUN, str(go), "run", "--space", str(space), "--data",
         f"npz:{data}", "--out", str(out), "-q"],
        cwd=ROOT, env=_env(folder), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lock = out / _lock.LOCK_FILE
        _wait_for(lambda: first.poll() is not None or lock.is_file() and lock.stat().st_size)
        assert first.poll() is None, first.communicate()
        host = socket.gethostname()
        for argv in (
            ["run", "--space", other, "--data", f"npz:{data}", "--out", out],
            ["run", "--resume", out],
        ):
            code, stdout, err = run_cli(capsys, *argv)
            assert code == 2 and err.count("\n") == 1 and stdout == "", err
            assert f"is in use by pid {first.pid} on {host} since " in err, err
            assert "wait for it to end" in err
        with pytest.raises(_lock.FolderInUse, match=f"pid {first.pid} on {host}"):
            jrobust.race(4, evaluator=lambda m, i: m + 0.0, checkpoint_dir=out)
        assert not (out / "config.toml").exists()  # the refused commands wrote nothing there
        go.touch()
        _, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    assert "learning_rate = [0.003, 0.03]" in (out / "config.toml").read_text()  # the first's run
    assert not lock.exists()  # released at the end


def test_a_stale_lock_is_taken_over_and_a_foreign_one_is_reported(tmp_path, capsys):
    folder = tmp_path / "race"
    killed = subprocess.run(
        [sys.executable, "-c", "import os, sys, jrobust._src.lock as l; "
         "l.acquire(sys.argv[1], command='a killed race'); os.kill(os.getpid(), 9)", str(folder)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL and (folder / _lock.LOCK_FILE).is_file()
    ev = lambda m, i: 1.0 + 0.1 * m + 0.01 * np.sin(i)  # noqa: E731
    with pytest.warns(RuntimeWarning, match="was left by pid .* which no longer runs; taking it"):
        result = jrobust.race(3, evaluator=ev, warmup=2, max_instances=3, checkpoint_dir=folder)
    assert result.finished and not (folder / _lock.LOCK_FILE).exists()
    record = {"pid": 4242, "host": "elsewhere.example", "started": "2026-01-02T03:04:05",
              "command": "jrobust run --out X"}  # fmt: skip
    (folder / _lock.LOCK_FILE).write_text(json.dumps(record))
    with pytest.raises(_lock.FolderInUse, match="locked by pid 4242 on elsewhere.example"):
        jrobust.race(3, evaluator=ev, warmup=2, max_instances=3, checkpoint_dir=folder)
    assert (folder / _lock.LOCK_FILE).is_file()  # reported, not taken over


def test_the_lock_is_released_after_an_error_and_leaves_no_folder(inputs, tmp_path, capsys):
    folder, space, data = inputs
    out = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "run", "--space", space, "--data", f"npz:{data}", "--out", out, "--target", "nope"
    )
    assert code == 2 and "--target" in err
    assert not out.exists()
    # the lock of a race from Python is released when it raises, too
    with pytest.raises(ZeroDivisionError):
        jrobust.race(2, evaluator=lambda m, i: 1 / 0, checkpoint_dir=out)
    assert not out.exists()


def test_a_stale_lock_file_does_not_make_a_run_folder_foreign(finished, tmp_path, capsys):
    run = copy_of(finished, tmp_path)
    record = {"pid": dead_pid(), "host": socket.gethostname(), "started": "2026-01-02T03:04:05",
              "command": "jrobust run"}  # fmt: skip
    (run / _lock.LOCK_FILE).write_text(json.dumps(record))
    assert jrobust.load_run(run).winner_id == jrobust.load_run(finished).winner_id
    code, _, err = run_cli(capsys, "report", run, "-q")
    assert code == 0, err
    config = cli_settings.read_config(run)
    assert cli_settings.check_folder(run, config) is True  # still this run, to continue


# ------------------------------------------------------------------ 2. files checked on read
def _unfinished(run: Path) -> Path:
    (run / "result.json").unlink()
    for table in ("ledger", "history", "path", "models"):
        (run / f"{table}.parquet").unlink()
    return run


def test_a_checkpoint_of_another_race_is_refused_on_read(finished, tmp_path, capsys):
    run = _unfinished(copy_of(finished, tmp_path))
    assert len(jrobust.load_run(run).ledger)  # its own checkpoint is read
    other = tmp_path / "other"
    jrobust.race(
        4, evaluator=lambda m, i: 10.0 + m, warmup=2, max_instances=2, checkpoint_dir=other
    )
    shutil.copy(other / CHECKPOINT_FILE, run / CHECKPOINT_FILE)
    code, stdout, err = run_cli(capsys, "report", run)
    assert code == 2 and err.count("\n") == 1 and stdout == ""
    assert "checkpoint.npz" in err and "config.toml" in err and "another race" in err, err
    with pytest.raises(ValueError, match="checkpoint.npz .* another race"):
        jrobust.load_run(run)


def test_an_edited_config_of_a_finished_run_is_named(finished, tmp_path, capsys):
    run = copy_of(finished, tmp_path)
    text = (run / "config.toml").read_text()
    (run / "config.toml").write_text(text.replace("0.03", "0.05"))
    code, _, err = run_cli(capsys, "report", run)
    assert code == 2 and err.count("\n") == 1
    assert "result.json" in err and "config.toml" in err, err
    with pytest.raises(ValueError, match="result.json"):
        jrobust.load_run(run)
    # a checkpoint from elsewhere beside the finished tables is named as well
    run2 = copy_of(finished, tmp_path, "run2")
    other = tmp_path / "other"
    jrobust.race(
        4, evaluator=lambda m, i: 10.0 + m, warmup=2, max_instances=2, checkpoint_dir=other
    )
    shutil.copy(other / CHECKPOINT_FILE, run2 / CHECKPOINT_FILE)
    code, _, err = run_cli(capsys, "report", run2)
    assert code == 2 and "checkpoint.npz" in err, err


# ------------------------------------------------------------------ 3. duplicate models
def test_duplicate_models_are_refused_and_ids_never_shift(toy_population):
    a, b = small_cnn(), small_cnn(learning_rate=0.1)
    calls = []

    def ev(m, i):
        calls.append(m)
        return 1.0 + m + 0.01 * i

    with pytest.raises(ValueError, match="models 0 and 2 .* the same configuration"):
        jrobust.race([a, b, a], evaluator=ev, warmup=2, max_instances=2)
    with pytest.raises(ValueError, match="models 0 and 1 .* the same configuration"):
        jrobust.race([a, a, b], toy_population, warmup=2, max_instances=2)
    assert not calls
    # without repeats the ids are the list's indices
    result = jrobust.race([b, a], evaluator=ev, warmup=2, max_instances=2)
    assert result.models.model_id.tolist() == [0, 1] and result.configs == [b, a]


# ------------------------------------------------------------------ 4. figures, atomically
def test_figures_never_follow_a_planted_symlink_and_stale_ones_go(finished, tmp_path, capsys):
    run = copy_of(finished, tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    for name in ("distributions.png", "path.png"):
        (run / f"{name}.tmp{os.getpid()}.png").symlink_to(outside)
        (run / f"{name}.tmp{os.getpid()}").symlink_to(outside)
    (run / f"summary.md.tmp{os.getpid()}").symlink_to(outside)
    stale = run / f"path.png.tmp{dead_pid()}.png"
    stale.write_bytes(b"left by a killed report")
    code, _, err = run_cli(capsys, "report", run, "-q")
    assert code == 0, err
    assert outside.read_text() == "keep me"
    assert not [p.name for p in run.iterdir() if ".tmp" in p.name]
    assert (run / "path.png").read_bytes()[:4] == b"\x89PNG"


def test_the_atomic_writer_keeps_a_live_writers_temporary(tmp_path):
    target = tmp_path / "f.txt"
    live = tmp_path / f"f.txt.tmp{os.getppid()}"  # a running process's (the test's parent)
    live.write_text("being written")
    dead = tmp_path / f"f.txt.tmp{dead_pid()}"
    dead.write_text("left by a killed writer")
    _atomic.write_text_atomic(target, "new")
    assert live.exists() and not dead.exists() and target.read_text() == "new"


# ------------------------------------------------------------------ 5. summary.md is Markdown
def test_summary_md_escapes_names_and_code_spans(tmp_path):
    markdown_it = pytest.importorskip("markdown_it")
    names = ["<script>alert(1)</script>", '"><img src=x onerror=alert(2)>', "a`b ``c"]
    models = [small_cnn(learning_rate=lr) for lr in (1e-3, 1e-2, 1e-1)]
    space = jrobust.SearchSpace.from_models(models, names=names)
    for winner in range(3):
        spread = np.roll([0.1, 0.5, 0.9], winner)

        def ev(m, i, spread=spread):
            return 1.0 + spread[m] * (1.0 + 0.1 * np.sin(3.0 * i + m))

        result = jrobust.race(space, evaluator=ev, warmup=3)
        assert result.winner_id == winner
        info = {"data": "<img src=y onerror=alert(3)> *bold*", "command": "jrobust `run`"}
        folder = jrobust.save_run(result, tmp_path / f"run{winner}", figures=False, info=info)
        rendered = markdown_it.MarkdownIt("commonmark").render((folder / "summary.md").read_text())
        assert "<script" not in rendered and "<img" not in rendered, rendered
        assert "<em>bold</em>" not in rendered
        shown = rendered.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
        shown = shown.replace("&amp;", "&")
        for name in names:
            assert name in shown, name  # every name is shown as it is, as text


# ------------------------------------------------------------------ 6. sizes that cannot fit
def test_sizes_that_cannot_be_allocated_are_refused_up_front(inputs, finished, tmp_path, capsys):
    folder, space, data = inputs
    with pytest.raises(ValueError, match="max_instances=1000000000000 .* memory"):
        jrobust.race(3, evaluator=lambda m, i: m + 0.0, max_instances=10**12)
    out = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "run", "--space", space, "--data", f"npz:{data}", "--out", out,
        "--max-instances", 10**12,
    )  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "memory" in err, err
    assert not out.exists()
    run = copy_of(finished, tmp_path, "resume")
    text = (run / "config.toml").read_text()
    start = text.index("[data]")
    end = text.index("\n[", start + 1)
    calo = '[data]\nsource = "calo-a"\nevents = 1000000000000\n'
    (run / "config.toml").write_text(text[:start] + calo + text[end:])
    before = sorted((p.name, p.stat().st_mtime_ns) for p in run.iterdir())
    code, _, err = run_cli(capsys, "run", "--resume", run)
    assert code == 2 and err.count("\n") == 1 and "events=1000000000000" in err, err
    assert "memory" in err
    assert sorted((p.name, p.stat().st_mtime_ns) for p in run.iterdir()) == before


# ------------------------------------------------------------------ 7. seeds
def test_seeds_outside_the_32_bit_range_are_refused_before_anything(
    inputs, tmp_path, capsys, toy_population
):
    folder, space, data = inputs
    out = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "run", "--space", space, "--data", f"npz:{data}", "--out", out,
        "--seed", 2**31,
    )  # fmt: skip
    assert code == 2 and err.count("\n") == 1
    assert "seed must be an integer in [0, 2147483647], got 2147483648" in err, err
    assert not out.exists()
    with pytest.raises(ValueError, match="seed must be an integer in \\[0, 2147483647\\], got -1"):
        jrobust.train_instances(small_cnn(), toy_population, [0], seed=-1)
    with pytest.raises(ValueError, match="seed must be an integer in \\[0, 2147483647\\]"):
        jrobust.race(2, evaluator=lambda m, i: m + 0.0, seed=2**31)


# ------------------------------------------------------------------ 8. divergence is upwards
def test_negative_losses_are_not_diverged():
    def ev(m, i):  # model 0 is far better than the others, and negative
        return np.where(m == 0, -5000.0, 1.0) + 0.01 * np.sin(i + m)

    result = jrobust.race(3, evaluator=ev, warmup=3, max_instances=3)
    assert set(result.ledger.status) == {"ok"} and result.winner_id == 0
    result = jrobust.race(
        2, evaluator=lambda m, i: -1e12 * (m + 1.0) - i, warmup=2, max_instances=2
    )
    assert set(result.ledger.status) == {"ok"}

    def up(m, i):  # far above the others: still diverged, negative losses or not
        return np.where((m == 1) & (i == 1), 1e7, -3.0 + 0.1 * np.sin(i + m))

    result = jrobust.race(3, evaluator=up, warmup=3, max_instances=3)
    row = result.ledger[(result.ledger.model_id == 1) & (result.ledger.instance == 1)]
    assert row.status.item() == "diverged"
    assert (result.ledger.status == "diverged").sum() == 1


# ------------------------------------------------------------------ 9. train_instances
def test_train_instances_on_transformed_test_sets_gives_the_ledgers_rows(toy_population):
    pop = jrobust.data.with_transforms(toy_population, shift=[0, 1])
    config = small_cnn(epochs=1)
    frame = jrobust.train_instances(config, pop, [0, 1])
    pairs = [("none", None), ("shift", 0.0), ("shift", 1.0)]
    assert len(frame) == 2 * len(pairs)
    assert frame.instance.tolist() == [0, 0, 0, 1, 1, 1]
    assert frame["transform"].tolist() == [p[0] for p in pairs] * 2
    assert frame.param.isna().tolist() == [True, False, False] * 2
    result = jrobust.race([config], pop, warmup=2, max_instances=2)
    ledger = result.ledger
    shared = [c for c in ledger.columns if c in frame.columns]
    race_only = {"model_id", "round", "stage", "stage_kind", "train_size", "seconds"}
    assert set(ledger.columns) - set(shared) <= race_only
    assert set(frame.columns) - set(shared) == set()
    pd.testing.assert_frame_equal(
        frame[shared].drop(columns=["loss"]).reset_index(drop=True),
        ledger[shared].drop(columns=["loss"]).reset_index(drop=True),
        check_dtype=False,
    )
    np.testing.assert_allclose(frame.loss, ledger.loss, rtol=1e-5)


# ------------------------------------------------------------------ 10. the small ones
SIGHUP_RUN = """
import os, signal, sys
import jrobust.cli
from jrobust._src.race import race as r
tell = r.Race.tell
def hang_up(self, work, losses):  # the terminal goes away during the first round
    report = tell(self, work, losses)
    if self.state.round == 1:
        os.kill(os.getpid(), signal.SIGHUP)
    return report
r.Race.tell = hang_up
raise SystemExit(jrobust.cli.main(sys.argv[1:]))
"""


def test_sighup_stops_after_the_round_and_says_how_to_continue(inputs, tmp_path):
    folder, space, data = inputs
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-c", SIGHUP_RUN, "run", "--space", str(space), "--data", f"npz:{data}",
         "--out", str(out), "-q"],
        cwd=ROOT, env=_env(folder), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 129, done.stderr
    assert done.stderr == f"jrobust: interrupted; continue with: jrobust run --resume {out}\n"
    assert peek(out / CHECKPOINT_FILE)["round"] == 1
    assert not (out / _lock.LOCK_FILE).exists()


def _full_disk_on(nth: int):
    calls = [0]
    fsync = _atomic._sync

    def failing(fd):
        calls[0] += 1
        if calls[0] == nth:
            raise OSError(errno.ENOSPC, "No space left on device")
        return fsync(fd)

    return failing


def test_a_full_disk_message_names_the_folder_and_what_is_kept(inputs, tmp_path, capsys):
    folder, space, data = inputs
    out = tmp_path / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_atomic, "_sync", _full_disk_on(1))  # config.toml, before any round
        code, _, err = run_cli(
            capsys, "run", "--space", space, "--data", f"npz:{data}", "--out", out
        )
    assert code == 1 and err.count("\n") == 1
    assert "no space left on the device" in err and "DIR" not in err, err
    assert "checkpoint is intact" not in err and "no round was saved" in err
    assert "run the same command again" in err


def test_resume_without_a_checkpoint_says_it_starts_afresh(finished, tmp_path, capsys):
    run = copy_of(finished, tmp_path)
    (run / CHECKPOINT_FILE).unlink()
    code, _, err = run_cli(capsys, "run", "--resume", run, "-q")
    assert code == 0
    assert f"{run / CHECKPOINT_FILE} is missing, so the race starts again from round 1" in err, err
    assert err.count("\n") == 1


@pytest.mark.parametrize("kind", ["below_a_file", "read_only"])
def test_an_unwritable_out_is_refused_before_the_data(inputs, tmp_path, capsys, monkeypatch, kind):
    folder, space, data = inputs
    if kind == "below_a_file":
        (tmp_path / "file.txt").write_text("x")
        out, message = tmp_path / "file.txt" / "run", "file.txt is a file, not a folder"
    else:
        locked = tmp_path / "ro"
        locked.mkdir()
        locked.chmod(0o555)
        access = os.access
        # the check asks the system; as root (which may write anyway) answer as for a user
        monkeypatch.setattr(
            os,
            "access",
            lambda p, mode, **kw: False if Path(p) == locked else access(p, mode, **kw),
        )
        out, message = locked / "run", "cannot be written"

    def never(data):
        raise AssertionError("the data was loaded")

    monkeypatch.setattr(cli_settings, "load_population", never)
    code, stdout, err = run_cli(
        capsys, "run", "--space", space, "--data", f"npz:{data}", "--out", out
    )
    assert code == 2 and err.count("\n") == 1 and stdout == "", err
    assert message in err and f"--out {out}" in err, err
    assert not out.exists()


def test_a_damaged_result_json_is_named(finished, tmp_path, capsys):
    payload = json.loads((finished / "result.json").read_text())
    for k, (key, value) in enumerate(
        [("info", "x"), (None, []), ("winners", "3"), ("settings", None), ("winner_id", -1)]
    ):
        run = copy_of(finished, tmp_path, f"run{k}")
        damaged = [] if key is None else {**payload, key: value}
        (run / "result.json").write_text(json.dumps(damaged))
        code, _, err = run_cli(capsys, "report", run)
        assert code == 1 and err.count("\n") == 1, (key, err)
        assert f"{run / 'result.json'} is damaged" in err, (key, err)
        assert "model -1" not in (run / "summary.md").read_text()
        with pytest.raises(jrobust.runfolder.RunFolderError, match="result.json is damaged"):
            jrobust.load_run(run)


def test_a_checkpoint_with_arrays_of_the_wrong_shape_is_named(finished, tmp_path, capsys):
    run = _unfinished(copy_of(finished, tmp_path))
    with np.load(run / CHECKPOINT_FILE, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["ledger.loss"] = arrays["ledger.loss"][:2]  # a column shorter than the others
    np.savez(run / CHECKPOINT_FILE, **arrays)
    code, _, err = run_cli(capsys, "report", run)
    assert code == 1 and err.count("\n") == 1, err
    assert f"the checkpoint {run / CHECKPOINT_FILE} is damaged" in err and "shape" in err, err
    code, _, err = run_cli(capsys, "run", "--resume", run)
    assert code == 1 and "is damaged" in err and "shape" in err, err


@pytest.mark.parametrize(
    ("returned", "what"),
    [
        (lambda n: np.array(["1.5"] * n), "str"),
        (lambda n: np.ones(n, bool), "bool"),
        (lambda n: np.ones(n) + 1j, "complex"),
        (lambda n: [1.0] * (n - 1) + [None], "object"),
    ],
)
def test_an_evaluator_must_return_real_numbers(returned, what):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning on the way
        with pytest.raises(TypeError, match="the evaluator must return real numbers"):
            jrobust.race(2, evaluator=lambda m, i: returned(len(m)), warmup=2, max_instances=2)
        with pytest.raises(TypeError, match="transformed losses must be real numbers"):
            jrobust.race(
                2, evaluator=lambda m, i: (np.ones(len(m)), returned(len(m))), warmup=2,
                max_instances=2, over="transforms",
            )  # fmt: skip


def test_inputs_without_features_are_refused():
    with pytest.raises(ValueError, match="x has no features"):
        jrobust.data.from_arrays(np.zeros((100, 0)), np.arange(100.0))
    with pytest.raises(ValueError, match="x has no features"):
        jrobust.Population(np.zeros((100, 4, 0)), np.arange(100.0), test_size=10)
