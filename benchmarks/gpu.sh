#!/usr/bin/env bash
# The GPU checks, as one script for a lent accelerator (H200): under 8 minutes.
# Runs from the source tree with the image's python3 (jax 0.11 CUDA, flax, optax, torch present):
#   bash benchmarks/gpu.sh            # results land in $OUT (or ./gpu-results)
# 1. trainer throughput against the stack size, both convolution forms, PyTorch one at a time
# 2. one race round on a large bucket (512 instances of a 64-model cohort)
# 3. the projection of the paper's 6912-model energy search in GPU-hours
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-results}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
python3 -c 'import jax; print(jax.__version__, jax.devices())' 2>&1 | tee "$out/devices.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee -a "$out/devices.txt"
timeout 300 python3 benchmarks/throughput.py --stacks 1 64 256 1024 4096 --impls xla im2col \
  --work 200000 --torch-device cuda --json "$out/throughput.json" 2>&1 | tee "$out/throughput.txt"
timeout 150 python3 benchmarks/projection.py --race-round --json "$out/projection.json" 2>&1 \
  | tee "$out/projection.txt"
echo "done: $out"
