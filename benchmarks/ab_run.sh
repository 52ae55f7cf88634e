#!/usr/bin/env bash
# The default `jrobust run`, cold (a fresh compilation cache each time), at two commits side by
# side: OLD=/path/to/old/checkout NEW=/path/to/new/checkout PYTHON=python bash benchmarks/ab_run.sh REPEATS
# Each repeat runs the old tree, then the new one, on the embedded default data; prints wall seconds.
set -u
py="${PYTHON:-python}"
for r in $(seq 1 "$1"); do
  for side in old new; do
    src=$([ $side = old ] && echo "$OLD" || echo "$NEW")
    out=$(mktemp -d)
    cd "$src"
    t0=$(date +%s.%N)
    JROBUST_CACHE_DIR="$out/cache" PYTHONPATH="$src" $py -c "import sys; from jrobust.cli import main; sys.argv=['jrobust','run','--out','$out/run']; sys.exit(main())" > "$out/log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    echo "$r $side rc=$rc $(echo "$t1 - $t0" | bc) s; load $(cut -d' ' -f1 /proc/loadavg)"
    rm -rf "$out"
  done
done
