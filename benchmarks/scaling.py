"""Instance-steps per second against the number of devices a stack is sharded over.

    python benchmarks/scaling.py                          # CPU: 1, 2, 4, 8 simulated devices
    python benchmarks/scaling.py --devices 1,2,4,8 --per-device 32 --model paper1   # a GPU host
    srun -N 2 --ntasks-per-node 8 --gpus-per-task 1 python benchmarks/scaling.py --devices all

One stack of ``--instances`` instances (or ``--per-device`` per device: weak scaling) of one model
is trained with ``jrobust.train.train_stack`` over a ``"models"`` mesh of the first ``n`` devices;
after the compile, ``--repeat`` timed calls give seconds per call and instance-steps/s (instances
× optimizer steps / seconds). The losses are compared with the one-device run: sharding must not
change them (float32 rounding).

On a CPU the devices are simulated (``--xla_force_host_platform_device_count``), one subprocess
per count; they share the machine's cores, so the numbers show correctness and overhead, not
speed-up. On accelerators every count runs in this process over real devices. In a multi-host run
(``jrobust.distributed`` flags or the cluster's variables) the mesh spans all processes' devices
(``--devices all``) and process 0 prints.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _population(n_events: int, seed: int = 0):
    import numpy as np

    import jrobust

    rng = np.random.default_rng(seed)
    x = rng.random((n_events, 15, 15, 1)).astype(np.float32)
    w = np.linspace(0.5, 1.5, 225).reshape(15, 15, 1)
    energy = 1.0 + (x * w).mean(axis=(1, 2, 3)) + 0.01 * rng.standard_normal(n_events)
    return jrobust.Population(
        x, energy[:, None], target_names=("energy",), test_size=1000, val_size=0, name="scaling"
    )


def _config(args):
    from jrobust import zoo

    common = dict(train_size=args.train_size, epochs=args.epochs, target="energy")
    if args.model == "paper1":
        return zoo.paper_config(1, **common)
    return zoo.cnn_config(conv=(8,), pool=(2,), dense=(16,), batch_size=32, **common)


def measure(n_devices: int | None, args) -> dict:
    """Compile and time one stack over the first ``n_devices`` devices (None: all of them)."""
    import jax
    import numpy as np

    from jrobust import parallel, train

    population = _population(args.events)
    config = _config(args)
    n = jax.device_count() if n_devices is None else n_devices
    size = args.per_device * n if args.per_device else args.instances
    placement = parallel.placement_for(n_devices)
    instances = np.arange(size)
    configs = [config] * size
    bucket = train.bucket_size_for(size, n)
    t0 = time.perf_counter()
    first = train.train_stack(configs, instances, population, bucket=bucket, placement=placement)
    first_call = time.perf_counter() - t0
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        out = train.train_stack(configs, instances, population, bucket=bucket, placement=placement)
        times.append(time.perf_counter() - t0)
    steps = config.epochs * (config.train_size // config.batch_size)
    seconds = float(np.median(times))
    device = jax.devices()[0]
    return dict(
        devices=n,
        platform=device.platform,
        device_kind=device.device_kind,
        processes=jax.process_count(),
        stack=size,
        bucket=bucket,
        steps=steps,
        compile_seconds=float(first["compile_seconds"]),
        first_call_seconds=first_call,
        seconds=seconds,
        instance_steps_per_s=size * steps / seconds,
        loss=[float(v) for v in out["loss"]],
    )


def _child(n: int, args) -> dict:
    env = dict(os.environ)
    env["JAX_PLATFORMS"] = "cpu"
    flags = env.get("XLA_FLAGS", "")
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", str(n), *sys.argv[1:]]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    if proc.returncode != 0:
        raise RuntimeError(
            f"the {n}-device run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("SCALING ")][-1]
    return json.loads(line[len("SCALING ") :])


def table(rows: list[dict]) -> str:
    import numpy as np

    base = rows[0]
    lines = [
        "| devices | stack | per device | compile s | s / call | instance-steps/s | vs first row "
        "| max rel. loss diff (same instances) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        k = min(len(r["loss"]), len(base["loss"]))  # instance i is the same training everywhere
        a, b = np.asarray(r["loss"][:k]), np.asarray(base["loss"][:k])
        diff = float(np.max(np.abs(a - b) / np.abs(b)))
        lines.append(
            f"| {r['devices']} | {r['stack']} | {r['stack'] // r['devices']} | "
            f"{r['compile_seconds']:.1f} | {r['seconds']:.3f} | {r['instance_steps_per_s']:,.0f} | "
            f"{r['instance_steps_per_s'] / base['instance_steps_per_s']:.2f}× | "
            f"{diff:.1e} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", default="1,2,4,8", help="comma-separated counts, or 'all'")
    parser.add_argument("--instances", type=int, default=64, help="stack size (strong scaling)")
    parser.add_argument(
        "--per-device",
        type=int,
        default=0,
        help="instances per device (weak scaling; overrides --instances)",
    )
    parser.add_argument("--model", choices=("small", "paper1"), default="small")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=1024)
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--simulate",
        choices=("auto", "yes", "no"),
        default="auto",
        help="simulated CPU devices in subprocesses (auto: when no accelerator)",
    )
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    from jrobust import distributed

    distributed.add_cli_arguments(parser)
    args = parser.parse_args(argv)

    if args.child is not None:  # one simulated count, in its own process
        print("SCALING " + json.dumps(measure(args.child, args)), flush=True)
        return
    multi = distributed.initialize_from_args(args)
    import jax

    counts = [None] if args.devices == "all" else [int(c) for c in args.devices.split(",")]
    simulate = args.simulate == "yes" or (
        args.simulate == "auto" and not multi and jax.default_backend() == "cpu"
    )
    rows = []
    for n in counts:
        if simulate:
            rows.append(_child(n if n is not None else os.cpu_count(), args))
        elif n is None or n <= jax.device_count():
            rows.append(measure(n, args))
        else:
            print(f"skipping {n} devices: only {jax.device_count()} available", file=sys.stderr)
    if jax.process_index() != 0:
        return
    r0 = rows[0]
    print(
        f"# {args.model} model, {r0['steps']} steps per instance, platform {r0['platform']} "
        f"({r0['device_kind']}), {r0['processes']} process(es), "
        f"{'simulated devices' if simulate else 'real devices'}, jax {jax.__version__}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    print(table(rows))


if __name__ == "__main__":
    main()
