"""How fast the ``jrobust`` command answers what needs no computation: ``--help``, ``--version``,
``run --help`` and a mistyped option.

Runs each command ``--repeats`` times (after one warm-up run, so the file cache is warm) in a
fresh process, as a user's shell does, and prints one Markdown row per command: the median and
the fastest wall time, and ``python -c pass`` beside them for the interpreter's own start. The
target: under 0.5 s on a 2-core CPU (the CLIs users compare with answer that fast).

Usage:
  python benchmarks/cli_startup.py
  python benchmarks/cli_startup.py --repeats 20
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = (
    ["--help"],
    ["--version"],
    ["run", "--help"],
    ["report", "--help"],
    ["run", "--statistic", "maks"],
)


def _seconds(argv: list[str], repeats: int) -> list[float]:
    subprocess.run(argv, capture_output=True, check=False)  # warm the file cache
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    script = shutil.which("jrobust") or str(Path(sys.executable).with_name("jrobust"))
    print("| command | median | fastest |")
    print("|---|---|---|")
    for argv in ([sys.executable, "-c", "pass"], *([script, *c] for c in COMMANDS)):
        times = _seconds(argv, args.repeats)
        name = "python -c pass" if argv[0] == sys.executable else "jrobust " + " ".join(argv[1:])
        print(f"| `{name}` | {statistics.median(times):.3f} s | {min(times):.3f} s |", flush=True)


if __name__ == "__main__":
    main()
