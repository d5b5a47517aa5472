#!/usr/bin/env bash
# Everything that needs a CUDA GPU, in one go: the tuning sweep, the full paper and segmentation
# benchmarks (theory ran on the CPU), the CUDA tests and the speed benchmark. Usage: scripts/gpu_checks.sh OUT_DIR [WORKERS]
# Writes OUT_DIR/{tuning.json,paper.json,segmentation.json,bench-speed.json,gpu.log}; tables and figures
# are made from the JSON files afterwards with `cmcd bench paper --report-only` (and segmentation).
# The paper benchmark reads the settings the tuning sweep chose (results dir's tuning.json).
set -u
out=${1:?usage: scripts/gpu_checks.sh OUT_DIR [WORKERS]}
workers=${2:-8}
export PYTHONUNBUFFERED=1 CMCD_CACHE=${CMCD_CACHE:-/tmp/cmcd-cache}
results=/tmp/cmcd-results
mkdir -p "$out" "$results"
log="$out/gpu.log"
step() { echo "=== $(date +%T) $*" | tee -a "$log"; }

step "device"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >>"$log" 2>&1
step "bench tuning"
timeout -k 5 240 python3 -m cmcd bench tuning --workers "$workers" --resume --out "$results" >>"$log" 2>&1
echo "exit $?" >>"$log"; pkill -f multiprocessing.spawn; cp "$results/tuning.json" "$out/" 2>/dev/null
step "bench paper"
timeout -k 5 420 python3 -m cmcd bench paper --workers "$workers" --resume --out "$results" >>"$log" 2>&1
echo "exit $?" >>"$log"; pkill -f multiprocessing.spawn; cp "$results/paper.json" "$out/" 2>/dev/null
step "bench segmentation"
timeout -k 5 140 python3 -m cmcd bench segmentation --workers "$workers" --resume --out "$results" >>"$log" 2>&1
echo "exit $?" >>"$log"; pkill -f multiprocessing.spawn; cp "$results/segmentation.json" "$out/" 2>/dev/null
step "CUDA tests"
timeout -k 5 90 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py >>"$log" 2>&1; echo "exit $?" >>"$log"
step "bench speed"
timeout -k 5 50 python3 -m cmcd bench speed --device cuda --json >"$out/bench-speed.json" 2>>"$log"
echo "exit $?" >>"$log"
step "done"
