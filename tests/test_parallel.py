"""Scale-out: sharded stacks over simulated devices, several processes, memory-aware stack sizes.

The device count of a JAX process is fixed when it starts, so the 8-device and the two-process
checks run tests/_parallel_worker.py in subprocesses; this process has one CPU device.
"""

import argparse
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

import jrobust
from jrobust import parallel
from jrobust._src import distributed, train
from jrobust._src.engine import Engine
from jrobust._src.parallel import memory as _memory
from jrobust._src.race.work import Work
from jrobust._src.settings import Execution

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _parallel_worker as worker  # noqa: E402

TIMEOUT = 240


def _child_env(**extra):
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("JROBUST_", "JAX_", "XLA_FLAGS"))
    }
    env.update(extra)
    root = os.path.dirname(HERE)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _run_children(commands, envs, timeout=TIMEOUT):
    """Start every command, wait for all (with a timeout), kill whatever is left; return outputs."""
    procs = []
    try:
        for cmd, env in zip(commands, envs, strict=True):
            procs.append(
                subprocess.Popen(
                    cmd,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    cwd=os.path.dirname(HERE),
                )
            )
        outputs = []
        for p in procs:
            out, _ = p.communicate(timeout=timeout)
            outputs.append((p.returncode, out))
        return outputs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _assert_same_race(got: dict, want: dict, rtol=1e-5):
    for key in ("model_id", "instance", "round", "status"):
        assert got[key] == want[key], key
    np.testing.assert_allclose(got["loss"], want["loss"], rtol=rtol)
    assert got["winner"] == want["winner"]


@pytest.fixture(scope="module")
def reference():
    """The small race in this single-device process."""
    return worker.ledger_record(worker.small_race())


# ---------------------------------------------------------------------------------- sizing
def test_stack_size_for_memory_is_a_capped_multiple_of_the_devices():
    for n_dev in (1, 2, 3, 8):
        for free in (0, 10**6, 10**9, 10**11):
            for per in (1, 10**4, 10**6, 10**8):
                for cap in (None, 1, 5, 8, 12, 24, 1000):
                    size = parallel.stack_size_for_memory(free, per, n_dev, cap=cap)
                    assert size >= n_dev and size % n_dev == 0
                    if cap is not None and cap >= n_dev:
                        assert size <= cap
                    per_device = size // n_dev
                    if cap is None:
                        assert per_device & (per_device - 1) == 0  # a power of two
                        assert per_device == 1 or per_device * per <= 0.5 * free
    assert parallel.stack_size_for_memory(10**9, 10**6, 4) == 4 * 256  # 500 fit: 256 per device
    assert parallel.stack_size_for_memory(10**9, 10**6, 4, reserved=10**8 * 3) == 4 * 128
    with pytest.raises(ValueError):
        parallel.stack_size_for_memory(10**9, 10**6, 4, fraction=0)


def test_instance_bytes_grows_with_the_model_and_batch(toy_population):
    cnn = lambda **kw: jrobust.zoo.cnn_config(
        **{**dict(conv=(4,), pool=(2,), dense=(8,), train_size=200, batch_size=20), **kw}
    )
    small, wide = cnn(), cnn(conv=(32,), dense=(64,))
    big_batch = cnn(train_size=1000, batch_size=200)
    b_small = parallel.instance_bytes(small, toy_population)
    assert b_small > 4 * 6 * jrobust.count_params(small, toy_population.input_shape)
    assert parallel.instance_bytes(wide, toy_population) > b_small
    assert parallel.instance_bytes(big_batch, toy_population) > b_small


def test_max_stack_follows_free_memory_and_never_exceeds_the_cap(toy_population, monkeypatch):
    cfg = jrobust.zoo.mlp_config(hidden=(8,), train_size=200, batch_size=20, epochs=1)
    per = parallel.instance_bytes(cfg, toy_population)
    assert parallel.free_device_bytes() > 0
    monkeypatch.setattr(_memory, "free_device_bytes", lambda device=None: 64 * per)
    assert parallel.max_stack(cfg, toy_population) == 16  # half the memory, less the data: 31 fit
    for cap in (1, 3, 8, 16, 100):
        assert parallel.max_stack(cfg, toy_population, cap=cap) == min(cap, 16)
    monkeypatch.setattr(_memory, "free_device_bytes", lambda device=None: 0)
    assert parallel.max_stack(cfg, toy_population) == 1  # at least one instance per device


def test_race_buckets_follow_the_memory_cap(toy_population, monkeypatch):
    sizes = []
    real = train.launch_stack

    def spy(*args, bucket=None, **kwargs):
        sizes.append(bucket)
        return real(*args, bucket=bucket, **kwargs)

    monkeypatch.setattr(train, "launch_stack", spy)
    monkeypatch.setattr(_memory, "max_stack", lambda *a, cap=None, **k: min(4, cap or 4))
    engine = Engine(worker.small_space(), toy_population, Execution(min_bucket=1))
    outcome = engine(Work(np.repeat(np.arange(4), 3), np.tile(np.arange(3), 4)))
    losses = outcome.losses
    assert sizes == [4, 4, 4] and np.isfinite(losses).all()
    monkeypatch.undo()
    engine = Engine(
        worker.small_space(), toy_population, Execution(max_bucket=3, min_bucket=1)
    )  # the user's cap
    assert engine.size(0) == 3  # 4 models, at most 3 per call (the user's cap)


# ---------------------------------------------------------------------------------- out of memory
def test_forced_out_of_memory_splits_and_the_race_completes(reference, monkeypatch):
    real = train.launch_stack
    sizes = []

    def flaky(*args, bucket=None, **kwargs):
        sizes.append(bucket)
        if bucket > 4:
            raise RuntimeError(f"RESOURCE_EXHAUSTED: Out of memory (a stack of {bucket})")
        return real(*args, bucket=bucket, **kwargs)

    monkeypatch.setattr(train, "launch_stack", flaky)
    result = worker.small_race(min_bucket=8)  # a first stack of 8 lanes
    _assert_same_race(worker.ledger_record(result), reference)
    # the program's one stack size is 8 (min_bucket=8): round 1's first 8 instances run out of
    # memory and split into 2 x 4, and from then on the program trains stacks of the size that fit
    assert sizes == [8, 4, 4, 4, 4, 4]
    assert result.n_trainings == len(reference["loss"])


def test_other_errors_are_not_retried_and_a_lane_that_cannot_fit_fails_clearly():
    calls = []

    def broken(lanes, size):
        calls.append(size)
        raise ValueError("not a memory problem")

    with pytest.raises(ValueError, match="not a memory problem"):
        parallel.launch_with_retry(broken, 4, 4)
    assert calls == [4]

    def full(lanes, size):
        raise RuntimeError("RESOURCE_EXHAUSTED: out of memory")

    with pytest.raises(RuntimeError, match="out of device memory with a stack of 1"):
        parallel.launch_with_retry(full, 4, 4)


# ---------------------------------------------------------------------------------- 8 devices
def test_eight_simulated_devices_shard_the_stack_and_match_one_device(tmp_path):
    out = tmp_path / "devices.json"
    [(code, log)] = _run_children(
        [
            [
                sys.executable,
                os.path.join(HERE, "_parallel_worker.py"),
                "devices",
                str(out),
                "--cpu-devices",
                "8",
            ]
        ],
        [_child_env()],
    )
    assert code == 0, log[-4000:]
    report = json.loads(out.read_text())
    assert report["device_count"] == 8
    _assert_same_race(report["sharded"], report["single"])
    _assert_same_race(report["forced"], report["single"])
    assert report["forced_sizes"][0] == 16 and all(s <= 8 for s in report["forced_sizes"][1:])
    assert report["arg_shardings"] and all(
        s == {"named": True, "spec": "P('models',)", "n_devices": 8}
        for s in report["arg_shardings"]
    )
    assert report["population_shardings"] and all(
        s == {"named": True, "spec": "P()", "n_devices": 8} for s in report["population_shardings"]
    )
    assert report["result_sharding"] == {"named": True, "spec": "P('models',)", "n_devices": 8}
    assert report["result_shards"] == [[1]] * 8  # one lane on each device
    sizes = {k: v for k, v in report["max_stack"].items()}
    for cap, size in sizes.items():
        assert size % 8 == 0 and size >= 8
        if cap != "None":
            assert size <= max(8, int(cap))
    assert sizes["12"] == 8 and sizes["20"] == 16


# ---------------------------------------------------------------------------------- two processes
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_race_like_one(tmp_path, reference):
    out = tmp_path / "ledger.json"
    port = _free_port()
    cmd = [
        sys.executable,
        os.path.join(HERE, "_parallel_worker.py"),
        "multi",
        str(out),
        "--cpu-devices",
        "2",
    ]
    envs = [
        _child_env(
            JROBUST_COORDINATOR=f"127.0.0.1:{port}",
            JROBUST_NUM_PROCESSES="2",
            JROBUST_PROCESS_ID=str(k),
        )
        for k in range(2)
    ]
    outputs = _run_children([cmd, cmd], envs)
    for code, log in outputs:
        assert code == 0, log[-4000:]
    infos = [
        json.loads(line[len("RESULT ") :])
        for _, log in outputs
        for line in log.splitlines()
        if line.startswith("RESULT ")
    ]
    assert sorted(i["process"] for i in infos) == [0, 1]
    assert all(
        i["processes"] == 2 and i["devices"] == 4 and i["local_devices"] == 2 and i["started"]
        for i in infos
    )
    assert len({i["digest"] for i in infos}) == 1  # every host took the same decisions
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.json"]  # only process 0 wrote
    record = json.loads(out.read_text())
    assert record["process"] == 0
    _assert_same_race(record, reference)


# ---------------------------------------------------------------------------------- start-up
def test_initialize_without_settings_is_a_single_process(monkeypatch):
    for name in (
        distributed.ENV_COORDINATOR,
        distributed.ENV_NUM_PROCESSES,
        distributed.ENV_PROCESS_ID,
        "JAX_COORDINATOR_ADDRESS",
        "SLURM_NTASKS",
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
    ):
        monkeypatch.delenv(name, raising=False)
    jax.devices()  # JAX is in use already: without settings this is simply a single process
    assert distributed.initialize() is False
    assert distributed.initialize(num_processes=1) is False
    assert distributed.is_main_process() and distributed.process_count() == 1


def test_initialize_checks_its_settings(monkeypatch):
    monkeypatch.setenv(distributed.ENV_NUM_PROCESSES, "two")
    with pytest.raises(ValueError, match="JROBUST_NUM_PROCESSES"):
        distributed.initialize()
    monkeypatch.setenv(distributed.ENV_NUM_PROCESSES, "2")
    monkeypatch.setenv(distributed.ENV_PROCESS_ID, "2")
    with pytest.raises(ValueError, match="process_id"):
        distributed.initialize(coordinator_address="127.0.0.1:1")
    monkeypatch.setenv(distributed.ENV_PROCESS_ID, "1")
    with pytest.raises(RuntimeError, match="first thing"):  # JAX already started in this process
        distributed.initialize(coordinator_address="127.0.0.1:1")


def test_cli_arguments():
    parser = argparse.ArgumentParser()
    distributed.add_cli_arguments(parser)
    args = parser.parse_args(
        ["--coordinator", "10.0.0.1:1234", "--num-processes", "4", "--process-id", "3"]
    )
    assert (args.coordinator, args.num_processes, args.process_id) == ("10.0.0.1:1234", 4, 3)
    defaults = parser.parse_args([])
    assert (defaults.coordinator, defaults.num_processes, defaults.process_id) == (None, None, None)


def test_a_mesh_must_span_every_process_and_counts_are_checked():
    assert parallel.placement_for(None) is None  # one device, one process: plain jit
    assert parallel.make_mesh(1).axis_names == (parallel.MODELS_AXIS,)
    with pytest.raises(ValueError, match="devices are available"):
        parallel.make_mesh(jax.device_count() + 1)
