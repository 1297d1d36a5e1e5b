#!/usr/bin/env bash
# The CUDA backend's rows of docs/performance.md: the issue's workload (random weights,
# 1024 prompts, 256 in / 256 out, continuous batching) on llama-8b and llama-1b, run on
# the GPU machine from the gpu-pack (scripts/gpu-check.sh pack):
#
#   llama-8b bf16, profiled          the per-op device time (CONVEYOR_CUDA_PROFILE=1)
#   llama-8b bf16, llama-1b bf16     the targets' rows
#   llama-8b FP8 weights + FP8 K/V   issue 9's row
#   llama-8b sampled, 256 prompts    greedy, then temperature 0.8, top-k 50, top-p 0.95
#                                    sampled on the GPU, then on the host
#                                    (CONVEYOR_CUDA_SAMPLING=host)
#   llama-8b, two micro-batches      the host plans a step while the GPU runs the other
#   llama-8b/1b, two micro-batches   1024 sequences, the stage starting each micro-batch while
#     of 512 (overlap)               the GPU runs the other (StageActor)
#   the same on two lanes (lanes)    CONVEYOR_CUDA_LANES=2: the micro-batches on two streams
#   CUDA graphs (graphs)             CONVEYOR_CUDA_GRAPHS=1: llama-8b and llama-1b as above,
#                                    then llama-1b with 64 sequences, where launches count
#   llama-8b bf16 weights, FP8 K/V   the cache's effect alone
#   llama-8b, 1024 sequences         bf16, then FP8 weights and K/V: every prompt at once
#                                    (an H200 holds their K/V; an H100's 80 GB does not)
#
#   bash scripts/gpu/throughput-bench.sh [CASES...]   default: all of
#       profile bf16-8b bf16-1b fp8-8b sampled micro-batches fp8kv-8b wide-8b overlap lanes
#       graphs
#
# Results to $OUT/throughput.txt; each run is cut off at BENCH_TIMEOUT seconds.
set -uo pipefail
# shellcheck source=scripts/gpu/pack-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/pack-env.sh"
report=$OUT/throughput.txt
cases=("$@")
[ ${#cases[@]} -gt 0 ] ||
  cases=(profile bf16-8b bf16-1b fp8-8b sampled micro-batches fp8kv-8b wide-8b overlap lanes
    graphs)
shape=(--input-len 256 --output-len 256 --mode continuous --max-step-tokens 8192)
workload=(--prompts 1024 "${shape[@]}")

bench() {
  local label=$1
  shift
  echo "== $label: conveyor bench --backend cuda $*" | tee -a "$report"
  local start=$SECONDS
  timeout "${BENCH_TIMEOUT:-150}" "$PACK/bin/conveyor" bench --backend cuda --progress off "$@" \
    2>&1 | grep -vE "^\[progress\]" >>"$report"
  grep -E "^continuous" "$report" | tail -n 1
  echo "(${label}: $((SECONDS - start)) s with loading)" | tee -a "$report"
}

for c in "${cases[@]}"; do
  case "$c" in
    profile)
      CONVEYOR_CUDA_PROFILE=1 bench "llama-8b bf16, profiled" --shape llama-8b \
        --max-sequences 512 "${workload[@]}"
      grep -E "cuda profile" "$report" | tail -n 24
      ;;
    bf16-8b) bench "llama-8b bf16" --shape llama-8b --max-sequences 512 "${workload[@]}" ;;
    bf16-1b) bench "llama-1b bf16" --shape llama-1b --max-sequences 1024 "${workload[@]}" ;;
    fp8-8b)
      bench "llama-8b f8_r weights, FP8 K/V" --shape llama-8b --dtype f8_r --kv-dtype fp8 \
        --max-sequences 512 "${workload[@]}"
      ;;
    sampled)
      # 256 prompts: the host's sampler takes a while over 128k-wide rows.
      sampling=(--prompts 256 "${shape[@]}" --temperature 0.8 --top-k 50 --top-p 0.95)
      bench "llama-8b greedy, 256 prompts" --shape llama-8b --max-sequences 256 --prompts 256 \
        "${shape[@]}"
      bench "llama-8b sampled on the GPU" --shape llama-8b --max-sequences 256 "${sampling[@]}"
      CONVEYOR_CUDA_SAMPLING=host bench "llama-8b sampled on the host" --shape llama-8b \
        --max-sequences 256 "${sampling[@]}"
      ;;
    micro-batches)
      bench "llama-8b bf16, two micro-batches" --shape llama-8b --max-sequences 512 \
        --micro-batches 2 "${workload[@]}"
      ;;
    fp8kv-8b)
      bench "llama-8b bf16 weights, FP8 K/V" --shape llama-8b --kv-dtype fp8 \
        --max-sequences 512 "${workload[@]}"
      ;;
    wide-8b)
      bench "llama-8b bf16, 1024 sequences" --shape llama-8b --max-sequences 1024 \
        "${workload[@]}"
      bench "llama-8b f8_r weights, FP8 K/V, 1024 sequences" --shape llama-8b --dtype f8_r \
        --kv-dtype fp8 --max-sequences 1024 "${workload[@]}"
      ;;
    overlap)
      bench "llama-8b bf16, 2 micro-batches of 512" --shape llama-8b --max-sequences 1024 \
        --micro-batches 2 "${workload[@]}"
      bench "llama-8b f8_r weights, FP8 K/V, 2 micro-batches of 512" --shape llama-8b \
        --dtype f8_r --kv-dtype fp8 --max-sequences 1024 --micro-batches 2 "${workload[@]}"
      bench "llama-1b bf16, 2 micro-batches of 512" --shape llama-1b --max-sequences 1024 \
        --micro-batches 2 "${workload[@]}"
      ;;
    lanes)
      CONVEYOR_CUDA_LANES=2 bench "llama-8b bf16, 2 micro-batches of 512 on two lanes" \
        --shape llama-8b --max-sequences 1024 --micro-batches 2 "${workload[@]}"
      CONVEYOR_CUDA_LANES=2 bench "llama-8b f8_r weights, FP8 K/V, two lanes" --shape llama-8b \
        --dtype f8_r --kv-dtype fp8 --max-sequences 1024 --micro-batches 2 "${workload[@]}"
      ;;
    graphs)
      CONVEYOR_CUDA_GRAPHS=1 bench "llama-8b bf16, CUDA graphs" --shape llama-8b \
        --max-sequences 512 "${workload[@]}"
      CONVEYOR_CUDA_GRAPHS=1 bench "llama-1b bf16, CUDA graphs" --shape llama-1b \
        --max-sequences 1024 "${workload[@]}"
      small=(--shape llama-1b --max-sequences 64 --prompts 256 "${shape[@]}")
      bench "llama-1b bf16, 64 sequences" "${small[@]}"
      CONVEYOR_CUDA_GRAPHS=1 bench "llama-1b bf16, 64 sequences, CUDA graphs" "${small[@]}"
      ;;
    *) echo "unknown case: $c" >&2 ;;
  esac
done
