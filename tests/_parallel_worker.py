"""Subprocess side of tests/test_parallel.py: races under simulated devices or several processes.

    python tests/_parallel_worker.py devices OUT.json --cpu-devices 8
        a race over all 8 simulated CPU devices and the same race with devices=1, the shardings
        of the stacked arguments, memory-aware stack sizes, a race with forced out-of-memory errors.
    python tests/_parallel_worker.py multi OUT.json --cpu-devices 2
        one process of a multi-process race (settings from JROBUST_COORDINATOR,
        JROBUST_NUM_PROCESSES, JROBUST_PROCESS_ID); only process 0 writes OUT.json; every process
        prints one ``RESULT {...}`` line (its winner and a digest of its ledger).

The device count must be fixed before JAX starts, hence a separate process.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys


def small_space():
    """Four small MLPs of one cohort (they differ in learning rate only): quick to compile."""
    from jrobust._src import presets as zoo

    small = dict(hidden=(8,), train_size=200, batch_size=20, epochs=2, target="energy")
    return [zoo.mlp_config(learning_rate=lr, **small) for lr in (1e-3, 3e-3, 1e-2, 3e-2)]


def small_race(devices=None, **kwargs):
    """The race every test compares: warm-up 3 (12 instances), then halving to one winner."""
    import jrobust

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from conftest import make_regression_population

    kwargs.setdefault("compilation_cache", False)
    return jrobust.race(
        small_space(),
        make_regression_population(),
        statistic="std",
        rule="halving",
        warmup=3,
        max_instances=6,
        seed=0,
        devices=devices,
        **kwargs,
    )


def ledger_record(result) -> dict:
    led = result.ledger
    return {
        "winner": int(result.winner_id),
        "model_id": led.model_id.astype(int).tolist(),
        "instance": led.instance.astype(int).tolist(),
        "round": led["round"].astype(int).tolist(),
        "status": led.status.tolist(),
        "loss": led.loss.astype(float).tolist(),
    }


def digest(record: dict) -> str:
    return hashlib.sha1(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def _sharding_record(sharding) -> dict:
    from jax.sharding import NamedSharding

    return {
        "named": isinstance(sharding, NamedSharding),
        "spec": str(getattr(sharding, "spec", None)),
        "n_devices": len(sharding.device_set),
    }


def run_devices(out: str) -> None:
    import jax
    import numpy as np

    from jrobust import parallel
    from jrobust._src import train

    n = jax.device_count()
    placement = parallel.placement_for(None)
    sharded = small_race(devices=placement)
    single = small_race(devices=1)
    report = {
        "device_count": n,
        "sharded": ledger_record(sharded),
        "single": ledger_record(single),
        "n_programs": sharded.timing["n_programs"],
    }

    # the per-lane arguments of a stack, and the population replicated once per race
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from conftest import make_regression_population

    from jrobust._src.engine import Engine
    from jrobust._src.settings import Execution

    pop = make_regression_population()
    cfgs = small_space()
    engine = Engine(cfgs, pop, Execution(), devices=placement)
    program = engine.program(0)
    subsets = pop.subset_indices(np.arange(8), program.train_size)
    lanes = placement.put_lanes(program.stack(cfgs * 2, np.arange(8), subsets))
    report["arg_shardings"] = [_sharding_record(a.sharding) for a in jax.tree.leaves(lanes)]
    report["population_shardings"] = [
        _sharding_record(a.sharding) for a in jax.tree.leaves(engine.shared)
    ]

    # the result of one stack: really split, one lane per device
    pending = train.launch_stack(
        program, cfgs * 2, np.arange(8), pop, engine.shared, bucket=n, placement=placement
    )
    loss = pending.result.loss
    report["result_sharding"] = _sharding_record(loss.sharding)
    report["result_shards"] = [list(s.data.shape) for s in loss.addressable_shards]

    # memory-aware stack sizes over 8 devices
    report["max_stack"] = {
        str(cap): parallel.max_stack(cfgs[0], pop, placement, cap=cap)
        for cap in (None, 8, 12, 20, 64, 1000)
    }

    # forced out-of-memory errors above 8 lanes (one per device): the race splits and completes
    real = train.launch_stack
    sizes: list[int] = []

    def flaky(*args, bucket=None, **kwargs):
        sizes.append(bucket)
        if bucket > n:
            raise RuntimeError(f"RESOURCE_EXHAUSTED: Out of memory (a stack of {bucket})")
        return real(*args, bucket=bucket, **kwargs)

    train.launch_stack = flaky
    try:
        forced = small_race(devices=placement, min_bucket=16)  # a first stack of 16 lanes
    finally:
        train.launch_stack = real
    report["forced"] = ledger_record(forced)
    report["forced_sizes"] = sizes
    with open(out, "w") as f:
        json.dump(report, f)


def run_multi(out: str) -> None:
    from jrobust._src import distributed

    started = distributed.initialize()  # from JROBUST_* variables set by the test
    import jax

    result = small_race(devices=None)
    record = ledger_record(result)
    info = {
        "process": jax.process_index(),
        "processes": jax.process_count(),
        "started": started,
        "devices": jax.device_count(),
        "local_devices": jax.local_device_count(),
        "winner": record["winner"],
        "digest": digest(record),
    }
    print("RESULT " + json.dumps(info), flush=True)
    if distributed.is_main_process():
        with open(out, "w") as f:
            json.dump({**record, **info}, f)
    jax.distributed.shutdown()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("devices", "multi"))
    parser.add_argument("out")
    parser.add_argument("--cpu-devices", type=int, default=8)
    args = parser.parse_args(argv)
    os.environ["JAX_PLATFORMS"] = "cpu"
    flags = os.environ.get("XLA_FLAGS", "")
    count = f"--xla_force_host_platform_device_count={args.cpu_devices}"
    os.environ["XLA_FLAGS"] = f"{flags} {count}".strip()
    if "jax" in sys.modules:
        raise RuntimeError("jax was imported before the device count was set")
    if args.mode == "devices":
        run_devices(args.out)
    else:
        run_multi(args.out)


if __name__ == "__main__":
    main()
