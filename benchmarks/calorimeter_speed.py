"""Speed of the synthetic calorimeter: generation and cached load of a large population.

Generates ``--events`` clusters (default 500,000, 15x15) of data sets A and B into a fresh cache
folder, then loads them again from the cache, and prints one Markdown table row per data set
(machine, date, events/s, wall times). The issue's target: 500k events in under 60 s on a
2-core CPU, a cached load in seconds.

Usage:
  python benchmarks/calorimeter_speed.py                  # 500k events, A and B
  python benchmarks/calorimeter_speed.py --events 100000 --datasets A
  JAX_NUM_CPU_DEVICES=2 python benchmarks/calorimeter_speed.py   # one CPU device per core
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def _machine() -> str:
    import jax

    dev = jax.devices()[0]
    kind = dev.device_kind if dev.platform != "cpu" else platform.processor() or "cpu"
    return f"{os.cpu_count()} cores, {dev.platform} ({kind}), {len(jax.devices())} device(s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--datasets", nargs="+", default=["A", "B"])
    parser.add_argument("--cluster-size", type=int, default=15)
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()

    import jax

    from jrobust.data import calorimeter

    cache_dir = args.cache_dir or Path(tempfile.mkdtemp(prefix="jrobust-calo-bench-"))
    date = datetime.date.today().isoformat()
    print(f"jax {jax.__version__}; machine: {_machine()}; cache: {cache_dir}")
    print("| date | data set | events | cluster | generate (s) | events/s | cached load (s) |")
    print("|---|---|---|---|---|---|---|")
    try:
        for ds in args.datasets:
            kw = dict(cluster_size=args.cluster_size, cache_dir=cache_dir, seed=12345)
            calorimeter(4096, ds, **kw, cache=False)  # compile outside the timing
            t0 = time.perf_counter()
            pop = calorimeter(args.events, ds, **kw)
            gen = time.perf_counter() - t0
            assert not pop.meta["cache_hit"]
            del pop
            t0 = time.perf_counter()
            pop = calorimeter(args.events, ds, **kw)
            load = time.perf_counter() - t0
            assert pop.meta["cache_hit"]
            print(
                f"| {date} | {ds} | {args.events:,} | {args.cluster_size}x{args.cluster_size} | "
                f"{gen:.1f} | {args.events / gen:,.0f} | {load:.1f} |",
                flush=True,
            )
            del pop
    finally:
        if args.cache_dir is None:
            shutil.rmtree(cache_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
