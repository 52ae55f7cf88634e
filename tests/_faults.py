"""Kill or interrupt a tiny ``jrobust run`` at random moments, continue it, compare the ledger.

Shared by ``tests/test_faults.py`` (a few moments, in the suite) and ``benchmarks/faults.py``
(many). Every trial starts the command in a fresh process, sends SIGKILL or SIGINT after a random
delay, checks what the interrupted process left (exit status, one line on stderr, a consistent
folder), then continues the run (``--resume`` when the folder holds its configuration, else the
same command again) and compares its ledger with the ledger of an uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

# One cohort of 4 tiny MLPs: warm-up 2 (8 instances), then halving 4 -> 2 -> 1.
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

LEDGER_KEYS = ["model_id", "instance", "round", "status"]


def write_inputs(folder: Path) -> tuple[Path, Path]:
    """The tiny space file and its data (500 events of a noisy weighted sum of 6x6 pixels)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    x = rng.random((500, 6, 6, 1)).astype(np.float32)
    w = np.linspace(0.5, 1.5, 36).reshape(6, 6, 1)
    y = 1.0 + (x * w).mean(axis=(1, 2, 3)) + 0.01 * rng.standard_normal(500)
    data = folder / "tiny.npz"
    np.savez(data, x=x, y=y.astype(np.float32), target_names=np.array(["energy"]))
    space = folder / "tiny.toml"
    space.write_text(TINY_SPACE)
    return space, data


def command(space: Path, data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "jrobust", "run", "--space", str(space), "--data", f"npz:{data}",
            "--out", str(out), "--quiet"]  # fmt: skip


def _run(argv: list[str], env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def reference(space: Path, data: Path, out: Path, env: dict) -> tuple[pd.DataFrame, float]:
    """The ledger of an uninterrupted run and its wall time (the programs are compiled by then)."""
    _run(command(space, data, out.with_name(out.name + "-warm")), env)  # fills the caches
    t0 = time.perf_counter()
    done = _run(command(space, data, out), env)
    wall = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr
    return pd.read_parquet(out / "ledger.parquet"), wall


@dataclass
class Trial:
    kind: str  # "SIGKILL" or "SIGINT"
    delay: float
    returncode: int
    stderr: str
    interrupted: bool  # False when the run had finished before the signal


def interrupt(space: Path, data: Path, out: Path, env: dict, kind: str, delay: float) -> Trial:
    """Start the run, send ``kind`` after ``delay`` seconds, wait for the process to end."""
    proc = subprocess.Popen(
        command(space, data, out), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    time.sleep(delay)
    interrupted = proc.poll() is None
    if interrupted:
        proc.send_signal(signal.SIGKILL if kind == "SIGKILL" else signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    return Trial(kind, delay, proc.returncode, err, interrupted)


def check_interrupted(trial: Trial, out: Path) -> None:
    """What an interrupted run must leave: for SIGINT exit status 130 (or death by SIGINT
    before the command's own handler was installed, which a shell also reports as 130) and one
    line on stderr; a folder, if any, whose checkpoint and configuration can be read."""
    if trial.kind == "SIGINT" and trial.interrupted:
        assert trial.returncode in (130, -signal.SIGINT), (trial, trial.stderr)
        if trial.returncode == 130:
            assert trial.stderr.startswith("jrobust: interrupted"), trial.stderr
            assert trial.stderr.count("\n") == 1, trial.stderr
    if trial.kind == "SIGKILL" and trial.interrupted:
        assert trial.returncode == -signal.SIGKILL
    if not out.exists():
        return
    if trial.kind == "SIGINT" and trial.returncode == 130:  # its handler gave the folder back
        assert not (out / "run.lock").exists()
    from jrobust._src.race.checkpoint import CHECKPOINT_FILE, peek
    from jrobust._src.runfolder.layout import read_config

    if read_config(out) is None:  # killed while writing the configuration, the first file
        assert not (out / CHECKPOINT_FILE).exists()
        return
    if (out / CHECKPOINT_FILE).exists():
        peek(out / CHECKPOINT_FILE)  # never a half-written checkpoint
    if trial.kind == "SIGINT":
        assert not [p.name for p in out.iterdir() if ".tmp" in p.name]


def continue_run(space: Path, data: Path, out: Path, env: dict) -> pd.DataFrame:
    """Continue an interrupted run to its end and return its ledger."""
    if (out / "config.toml").exists():
        argv = [sys.executable, "-m", "jrobust", "run", "--resume", str(out), "--quiet"]
    else:
        argv = command(space, data, out)
    done = _run(argv, env)
    assert done.returncode == 0, done.stderr
    return pd.read_parquet(out / "ledger.parquet")


def same_ledger(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got[LEDGER_KEYS], want[LEDGER_KEYS])
    np.testing.assert_allclose(got.loss, want.loss, rtol=1e-6)


def environment(cache: Path) -> dict:
    env = dict(os.environ, JROBUST_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
    env.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")
    return env


def trials(folder: Path, n: int, seed: int = 0, report=None) -> list[Trial]:
    """``n`` trials at random moments, alternating SIGKILL and SIGINT; returns them."""
    space, data = write_inputs(folder)
    env = environment(folder / "cache")
    want, wall = reference(space, data, folder / "reference", env)
    rng = np.random.default_rng(seed)
    done = []
    for k in range(n):
        kind = ("SIGKILL", "SIGINT")[k % 2]
        out = folder / f"trial{k}"
        trial = interrupt(space, data, out, env, kind, float(rng.uniform(0.0, 0.95 * wall)))
        check_interrupted(trial, out)
        same_ledger(continue_run(space, data, out, env), want)
        done.append(trial)
        if report is not None:
            report(k, trial, wall)
    return done
