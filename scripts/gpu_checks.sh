#!/usr/bin/env bash
# Everything that needs a CUDA GPU, in one go, resumably: the CUDA tests and the speed benchmark,
# then the tuning sweep, the budget study, the tuning sweep again at the chosen budget, and the
# paper, theory and segmentation benchmarks.
# Usage: scripts/gpu_checks.sh OUT_DIR [WORKERS] [FROM_DIR]
# FROM_DIR (default: results) holds the JSON files of earlier runs: they are copied in first and
# every benchmark runs with --resume, so a machine lent for a few minutes adds what it can and the
# next one goes on from OUT_DIR (pass it as FROM_DIR). Each benchmark has a time limit of its own
# (seconds, overridable: LIMIT_TUNING=..., LIMIT_BUDGET=...); what finished is saved after every run.
# Writes OUT_DIR/{tuning,budget,paper,theory,segmentation}.json, OUT_DIR/bench-speed.json and
# OUT_DIR/gpu.log; tables, figures and the README are made from the JSON files afterwards with
# `cmcd bench NAME --report-only` and `python scripts/readme_results.py`.
# The budget study reads the settings the first tuning sweep chose; tuning (again), paper and
# theory then read the budget it chose (budget.json), and paper and theory the settings of that second sweep.
set -u
out=${1:?usage: scripts/gpu_checks.sh OUT_DIR [WORKERS] [FROM_DIR]}
workers=${2:-8}
from=${3:-results}
export PYTHONUNBUFFERED=1 CMCD_CACHE=${CMCD_CACHE:-/tmp/cmcd-cache}
results=/tmp/cmcd-results
mkdir -p "$out" "$results"
log="$out/gpu.log"
step() { echo "=== $(date +%T) $*" | tee -a "$log"; }

for name in tuning budget paper theory segmentation; do
  [ -f "$from/$name.json" ] && [ ! -f "$results/$name.json" ] && cp "$from/$name.json" "$results/"
done

# One benchmark in a session of its own, stopped after its time limit with every worker process
# it started (the whole process group, by its id), then its results copied out.
bench() {
  local name=$1 seconds=$2
  step "bench $name (at most $seconds s)"
  setsid python3 -m cmcd bench "$name" --workers "$workers" --resume --out "$results" >>"$log" 2>&1 &
  local pid=$!
  ( sleep "$seconds"; kill -TERM -- "-$pid" 2>/dev/null; sleep 10; kill -KILL -- "-$pid" 2>/dev/null ) &
  local watchdog=$!
  wait "$pid"; echo "exit $?" >>"$log"
  kill "$watchdog" 2>/dev/null
  kill -KILL -- "-$pid" 2>/dev/null  # workers left behind by a stopped run
  cp "$results/$name.json" "$out/" 2>/dev/null
}

step "device"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >>"$log" 2>&1
# The short checks first: a lent machine's ten-minute call must never end before them.
step "CUDA tests"
timeout -k 5 90 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py >>"$log" 2>&1; echo "exit $?" >>"$log"
step "bench speed"
timeout -k 5 50 python3 -m cmcd bench speed --device cuda --json >"$out/bench-speed.json" 2>>"$log"
echo "exit $?" >>"$log"
bench tuning "${LIMIT_TUNING:-240}"
bench budget "${LIMIT_BUDGET:-420}"
bench tuning "${LIMIT_TUNING:-240}"  # at the budget just chosen (no-op while budget.json is partial)
bench paper "${LIMIT_PAPER:-420}"
bench theory "${LIMIT_THEORY:-240}"
bench segmentation "${LIMIT_SEGMENTATION:-240}"
step "done"
