#!/usr/bin/env bash
# The GPU rows of docs/compression.md: `conveyor bench --backend cuda` on the random-weight
# llama-8b shape for each weight format the CUDA backend runs (bf16; q8_r W8A16, q4_g128
# W4A16 and f8_r W8A8 read compressed), run on the GPU machine from the gpu-pack
# (scripts/gpu-check.sh pack). Two workloads:
#
#   batch 64    64 prompts, 128 in / 128 out, at most 64 sequences: a decode step
#               reads every weight for 64 rows, the regime where fewer weight bytes win
#   throughput  the CUDA issue's workload: 1024 prompts, 256 in / 256 out, for the types
#               in THROUGHPUT_DTYPES (default none; e.g. "bf16 f8_r")
#
#   bash scripts/gpu/compression-bench.sh [DTYPES...]   batch 64 for DTYPES, default
#                                                       bf16 q8_r q4_g128 f8_r; "none"
#                                                       runs no batch-64 case
#
# BENCH_ARGS is added to every run (e.g. "--kv-dtype fp8" for the FP8 K/V cache).
#
# Tables to $OUT/compression-bench.txt; each run is cut off at BENCH_TIMEOUT seconds.
set -uo pipefail
# shellcheck source=scripts/gpu/pack-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/pack-env.sh"
report=$OUT/compression-bench.txt
dtypes=("$@")
[ ${#dtypes[@]} -gt 0 ] || dtypes=(bf16 q8_r q4_g128 f8_r)

bench() {
  local label=$1
  shift
  echo "== $label: conveyor bench --backend cuda ${BENCH_ARGS:-} $*" | tee -a "$report"
  local start=$SECONDS
  # shellcheck disable=SC2086  # BENCH_ARGS is a list of flags
  timeout "${BENCH_TIMEOUT:-120}" "$PACK/bin/conveyor" bench --backend cuda --progress off \
    --shape llama-8b --mode continuous ${BENCH_ARGS:-} "$@" 2>&1 | grep -vE "^\[progress\]" | tee -a "$report" |
    tail -n 3
  echo "(${label}: $((SECONDS - start)) s with loading)" | tee -a "$report"
}

for dtype in "${dtypes[@]}"; do
  [ "$dtype" = none ] && continue
  bench "batch 64, $dtype" --dtype "$dtype" --prompts 64 --input-len 128 --output-len 128 \
    --max-sequences 64 --max-step-tokens 8192
done
for dtype in ${THROUGHPUT_DTYPES:-}; do
  bench "throughput, $dtype" --dtype "$dtype" --prompts 1024 --input-len 256 \
    --output-len 256 --max-sequences 512 --max-step-tokens 8192
done
