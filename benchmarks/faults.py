"""Kill and interrupt a tiny ``jrobust run`` at many random moments; every one must resume to the
ledger of the uninterrupted run (the long version of ``tests/test_faults.py``).

    python benchmarks/faults.py --moments 40 --seed 1

Prints one line per trial (signal, moment, exit status) and a summary; exits 1 on the first
trial that does not hold (the assertion says what).
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import _faults  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moments", type=int, default=40, help="trials (default 40)")
    parser.add_argument("--seed", type=int, default=1, help="seeds the moments (default 1)")
    parser.add_argument("--folder", type=Path, default=None, help="work folder (default: a temp)")
    args = parser.parse_args(argv)
    folder = args.folder or Path(tempfile.mkdtemp(prefix="jrobust-faults-"))
    t0 = time.perf_counter()

    def report(k, trial, wall):
        state = "interrupted" if trial.interrupted else "had finished"
        print(f"trial {k:3d}: {trial.kind:7s} at {trial.delay:5.2f} s of {wall:.2f} s, "
              f"{state}, exit {trial.returncode}; resumed to the same ledger", flush=True)  # fmt: skip

    done = _faults.trials(folder, args.moments, seed=args.seed, report=report)
    counts = collections.Counter((t.kind, t.returncode) for t in done if t.interrupted)
    print(f"{len(done)} trials in {time.perf_counter() - t0:.0f} s, all resumed to the "
          f"uninterrupted ledger; interrupted (signal, exit status): {dict(counts)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
