#!/usr/bin/env bash
# The CPU throughput figures of benchmarks/RESULTS.md, as one script: the full protocol of
# benchmarks/throughput.py (paper model 1, stacks 1 4 8 16 64, 300 steps per timed call on both
# sides, 5 interleaved repeats; PyTorch as one process with every thread and as one one-thread
# process per core at once, eager and torch.compile-d; the matmul rate in every repeat; the CPU's
# theoretical peak). About 10 minutes on a quiet 2-core machine (under 20 with a cold
# torch.compile cache); run it with nothing else on the machine.
#   bash benchmarks/run_cpu.sh                      # -> benchmarks/results/cpu-<UTC date>.*
#   OUT=/tmp/check bash benchmarks/run_cpu.sh --steps 50 --repeats 2 --stacks 1 8   # a quick check
# Extra arguments go to benchmarks/throughput.py after the protocol's (so they override it).
# Writes cpu-<stamp>.json (every raw measurement, the machine, the protocol, the command),
# cpu-<stamp>.md (the table), cpu-<stamp>.txt (what was printed) and cpu-<stamp>.machine.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-benchmarks/results}"
python="${PYTHON:-python}"
stamp="$(date -u +%Y-%m-%dT%H%MZ)"
base="$out/cpu-$stamp"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
{
  date -u
  uname -a
  lscpu 2>/dev/null || grep -m1 "model name" /proc/cpuinfo
  "$python" -c 'import jax, jaxlib, numpy; print("jax", jax.__version__, "jaxlib", jaxlib.__version__, "numpy", numpy.__version__)'
  "$python" -c 'import torch; print("torch", torch.__version__, "threads", torch.get_num_threads())' 2>&1 || true
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime)"
} > "$base.machine.txt" 2>&1
load="$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)"
if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
  echo "run_cpu.sh: warning: the 1-minute load is $load: other jobs make these numbers noisy" >&2
fi
start=$SECONDS
timeout 2400 "$python" benchmarks/throughput.py --stacks 1 4 8 16 64 --steps 300 --repeats 5 \
  --json "$base.json" --markdown "$base.md" "$@" 2>&1 | tee "$base.txt"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime)" >> "$base.machine.txt"
echo "# run_cpu.sh: $((SECONDS - start)) s; wrote $base.{json,md,txt,machine.txt}" | tee -a "$base.txt"
