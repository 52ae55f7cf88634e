"""Nothing lost, nothing trusted blindly: kills, interrupts, a full disk, crafted files, bad input.

``test_kill_and_interrupt_at_random_moments`` is the short version of ``benchmarks/faults.py``:
``JROBUST_FAULT_MOMENTS`` moments (10 by default, as in CI), half SIGKILL and half SIGINT.
"""

import errno
import json
import os
import pickle
import subprocess
import sys
import warnings

import _faults
import numpy as np
import pandas as pd
import pytest

import jrobust
from jrobust._src import atomic as _atomic
from jrobust._src.cli import main
from jrobust._src.race.checkpoint import CHECKPOINT_FILE, peek

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    yield from _faults.fault_inputs(tmp_path_factory, "faults")


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_kill_and_interrupt_at_random_moments(tmp_path):
    n = int(os.environ.get("JROBUST_FAULT_MOMENTS", "10"))
    done = _faults.trials(tmp_path, n, seed=int(os.environ.get("JROBUST_FAULT_SEED", "0")))
    assert len(done) == n
    assert sum(t.interrupted for t in done) >= n // 2  # most signals land while it runs


class _Opens:
    """A pickle whose loading would create a file: proof that nothing ever unpickles it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_crafted_checkpoint_is_never_unpickled(inputs, tmp_path, capsys):
    folder, space, data = inputs
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    assert (
        main(["run", "--space", str(space), "--data", f"npz:{data}", "--out", str(run), "-q"]) == 0
    )
    capsys.readouterr()
    crafted = pickle.dumps({"state": _Opens(marker), "fingerprint": "x"})
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "config.toml").write_text((run / "config.toml").read_text())
    (legacy / "checkpoint.pkl").write_bytes(crafted)
    code, _, err = run_cli(capsys, "run", "--resume", str(legacy))
    assert code == 2 and "pickle format of jrobust < 0.2, which is never read" in err
    assert err.count("\n") == 1
    code, _, err = run_cli(capsys, "report", str(legacy))
    assert code == 2 and "never read" in err
    code, _, err = run_cli(
        capsys, "run", "--space", str(space), "--data", f"npz:{data}", "--out", str(legacy)
    )
    assert code == 2 and "never read" in err
    with pytest.raises(ValueError, match="never read"):
        jrobust.load_run(legacy)
    with pytest.raises(ValueError, match="never read"):
        jrobust.race(4, evaluator=lambda m, i: m + 0.0, checkpoint_dir=legacy)
    # a pickle renamed to the new checkpoint's name is a damaged file, and is still not loaded
    (run / CHECKPOINT_FILE).write_bytes(crafted)
    (run / "result.json").unlink()
    code, _, err = run_cli(capsys, "report", str(run))
    assert code == 1 and "checkpoint" in err and "is damaged" in err
    code, _, err = run_cli(capsys, "run", "--resume", str(run))
    assert code == 1 and "is damaged" in err
    assert not marker.exists()


def _full_disk_on(nth: int):
    """An ``fsync`` that fails like a full disk on its ``nth`` call (of the atomic writes)."""
    calls = [0]
    fsync = _atomic._sync

    def failing(fd):
        calls[0] += 1
        if calls[0] == nth:
            raise OSError(errno.ENOSPC, "No space left on device")
        return fsync(fd)

    return failing


def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    spread = np.linspace(0.1, 1.0, 8)
    ev = lambda m, i: 1.0 + spread[m] * np.sin(13.0 * i + m)  # noqa: E731
    full = jrobust.race(8, evaluator=ev, warmup=3)
    monkeypatch.setattr(_atomic, "_sync", _full_disk_on(2))  # the second round's checkpoint
    with pytest.raises(OSError, match="No space left"):
        jrobust.race(8, evaluator=ev, warmup=3, checkpoint_dir=tmp_path)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_FILE]  # no temporary file
    assert peek(tmp_path / CHECKPOINT_FILE)["round"] == 1
    resumed = jrobust.race(8, evaluator=ev, warmup=3, checkpoint_dir=tmp_path)
    pd.testing.assert_frame_equal(
        resumed.ledger.drop(columns="seconds"), full.ledger.drop(columns="seconds")
    )


def test_a_full_disk_in_the_command_is_exit_1_with_one_line(inputs, tmp_path, capsys, monkeypatch):
    folder, space, data = inputs
    out = tmp_path / "run"
    monkeypatch.setattr(_atomic, "_sync", _full_disk_on(3))  # config, checkpoint 1, then full
    code, _, err = run_cli(
        capsys, "run", "--space", str(space), "--data", f"npz:{data}", "--out", str(out)
    )
    monkeypatch.undo()
    assert code == 1 and err.count("\n") == 1
    assert "no space left on the device" in err and "jrobust run --resume" in err
    assert peek(out / CHECKPOINT_FILE)["round"] == 1  # intact, and resumable
    assert run_cli(capsys, "run", "--resume", str(out), "-q")[0] == 0


def test_a_damaged_table_is_exit_1_with_what_to_do(inputs, tmp_path, capsys):
    folder, space, data = inputs
    out = tmp_path / "run"
    assert (
        main(["run", "--space", str(space), "--data", f"npz:{data}", "--out", str(out), "-q"]) == 0
    )
    (out / "ledger.parquet").write_bytes(b"PAR1 not really")
    code, _, err = run_cli(capsys, "report", str(out))
    assert code == 1 and err.count("\n") == 1
    assert "cannot read the run folder" in err and "damaged" in err


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "f.txt"
    _atomic.write_text_atomic(target, "old")

    def half(fh):
        fh.write(b"new but")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        _atomic.write_atomic(target, half)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()  # a writer that has ended
    (tmp_path / f"f.txt.tmp{killed.pid}").write_text("left by a killed writer")
    _atomic.write_text_atomic(target, "new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--budget", "5"], "cannot cover the warm-up round (16 models x 3 instances = 48"),
        (["--devices", "64"], "--devices 64, but this machine has"),
        (["--space", "{empty}"], "defines no models"),
        (["--space", "{only_space}"], "space table 1 is empty"),
        (["--space", "{bad_race}"], "[race] warmup must be a positive integer, got 'three'"),
        (["--events", "50"], "events must be an integer of at least 100"),
    ],
)
def test_bad_combinations_leave_no_folder(tmp_path, capsys, argv, message):
    files = {
        "empty": "",
        "only_space": "[[space]]\n",
        "bad_race": '[base]\nmodel = "mlp"\n[race]\nwarmup = "three"\n',
    }
    for name, text in files.items():
        (tmp_path / f"{name}.toml").write_text(text)
    argv = [a.format(**{k: tmp_path / f"{k}.toml" for k in files}) for a in argv]
    out = tmp_path / "run"
    code, stdout, err = run_cli(capsys, "run", *argv, "--out", str(out))
    assert code == 2 and message in err and err.count("\n") == 1 and stdout == ""
    assert not out.exists()


def test_a_race_whose_every_instance_fails_says_so(tmp_path):
    with pytest.warns(RuntimeWarning, match="every instance of every model failed"):
        result = jrobust.race(4, evaluator=lambda m, i: np.full(len(m), np.nan), warmup=2)
    assert result.all_failed and set(result.ledger.status) == {"failed"}
    assert np.isinf(result.ledger.loss).all()  # failures are +inf in the ledger, as documented
    folder = jrobust.save_run(result, tmp_path / "run", figures=False)
    assert "Every instance failed" in (folder / "summary.md").read_text()
    assert json.loads((folder / "result.json").read_text())["all_failed"] is True


def test_an_all_failed_command_run_is_exit_1(inputs, tmp_path, capsys):
    folder, space, data = inputs
    text = space.read_text().replace("learning_rate = [3e-3, 3e-2]", "learning_rate = [1e30]")
    text = text.replace('model = "mlp"', 'model = "mlp"\noptimizer = "sgd"\nmomentum = 0.0')
    (tmp_path / "diverge.toml").write_text(text)
    out = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "run", "--space", str(tmp_path / "diverge.toml"), "--data", f"npz:{data}",
        "--out", str(out),
    )  # fmt: skip
    assert code == 1 and "every instance of every model failed" in err and err.count("\n") == 1
    assert "Every instance failed" in (out / "summary.md").read_text()


def test_diverging_instances_are_flagged_and_still_counted():
    def ev(m, i):
        return np.where((m == 1) & (i == 2), 1e15, 1.0 + 0.01 * (m + 1) * np.sin(i + m))

    result = jrobust.race(3, evaluator=ev, warmup=4, statistic="mean")
    row = result.ledger[(result.ledger.model_id == 1) & (result.ledger.instance == 2)]
    assert row.status.item() == "diverged" and row.loss.item() == 1e15
    assert set(result.ledger.status) == {"ok", "diverged"}
    assert 1 not in result.winners  # the statistics saw the diverged loss


def test_instance_indices_must_be_non_negative_integers(toy_population):
    from conftest import small_cnn

    for bad, error in (([0.5], TypeError), ([-1], ValueError), ([True], TypeError)):
        with pytest.raises(error, match="instance indices must be non-negative integers"):
            jrobust.train_instances(small_cnn(), toy_population, bad)


def test_an_npz_that_is_text_or_pickled_is_named_for_what_it_is(tmp_path):
    (tmp_path / "text.npz").write_text("x,y\n1,2\n")
    with pytest.raises(ValueError, match="is not an .npz file \\(not a zip archive\\)"):
        jrobust.data.from_npz(tmp_path / "text.npz")
    np.save(tmp_path / "one.npy", np.zeros(3))
    os.replace(tmp_path / "one.npy", tmp_path / "one.npz")
    with pytest.raises(ValueError, match="a single .npy array"):
        jrobust.data.from_npz(tmp_path / "one.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object), y=np.zeros(1))
    with pytest.raises(ValueError, match="object \\(pickled\\) arrays, which jrobust never loads"):
        jrobust.data.from_npz(tmp_path / "obj.npz")


def test_python_dash_m_reports_an_interrupt_before_the_race(tmp_path):
    """A Ctrl-C while the data loads: exit 130 and one line, never exit 0."""
    code = (
        "import os, signal, jrobust.cli, jrobust._src.cli.settings as s\n"
        "load = s.load_population\n"
        "def slow(data):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    return load(data)\n"
        "s.load_population = slow\n"
        "raise SystemExit(jrobust.cli.main(['run', '--data', 'digits', '--out', "
        f"{str(tmp_path / 'run')!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 130 and done.stderr == "jrobust: interrupted\n", done.stderr
    assert not (tmp_path / "run").exists()
