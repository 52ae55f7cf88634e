#!/usr/bin/env bash
# The GPU checks, as one script for a lent accelerator (H200): under 11 minutes.
# Runs from the source tree with the image's python3 (jax 0.11 CUDA, flax, optax, torch present):
#   bash benchmarks/gpu.sh            # results land in $OUT (or ./gpu-results)
# 1. trainer throughput against the stack size, both convolution forms, with the protocol of
#    benchmarks/run_cpu.sh (benchmarks/throughput.py --device gpu: 300 steps per timed call on
#    both sides, 5 interleaved repeats, medians with their ranges, stack N against stack 1, the
#    device's matmul rate in every repeat), PyTorch one instance at a time on the same GPU,
#    eager and torch.compile-d; every raw measurement in throughput.json
# 2. the smoke-scale race of the paper's 6912-model space with merged programs (programs,
#    compile and training seconds, lanes per stack)
# 3. one race round on a large bucket and the projection of the 6912-model search in GPU-hours
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-results}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
python3 -c 'import jax; print(jax.__version__, jax.devices())' 2>&1 | tee "$out/devices.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee -a "$out/devices.txt"
timeout 300 python3 benchmarks/throughput.py --device gpu --stacks 1 64 256 1024 \
  --impls xla im2col --steps 300 --repeats 5 --torch-processes 0 \
  --json "$out/throughput.json" --markdown "$out/throughput.md" 2>&1 | tee "$out/throughput.txt"
timeout 200 python3 benchmarks/programs.py --merge auto --markdown "$out/programs.md" 2>&1 \
  | tee "$out/programs.txt"
timeout 150 python3 benchmarks/projection.py --race-round --json "$out/projection.json" 2>&1 \
  | tee "$out/projection.txt"
echo "done: $out"
