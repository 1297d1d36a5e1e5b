#!/usr/bin/env bash
# The memory rows of docs/performance.md on the GPU machine, in one run of under 150 s on an
# H200, from the gpu-pack (scripts/gpu-check.sh pack; it needs conveyor and test_gpu):
#
#   (a) preemption: a K/V cache far smaller than the batch needs, each preempted sequence
#       resuming by recompute, by swap to the (pinned) host tier, to the disk tier, or as
#       the cost model chooses, next to a cache that holds the whole batch;
#   (b) throughput with the weight budget at 100%, 50% and 25% of the model (the layers
#       beyond it stream in from pinned host memory for every step);
#   (c) a job whose prompts share a long prefix, with and without prefix caching;
#   (d) K/V swap bandwidth per tier against a plain copy of the same size (test_gpu with
#       CONVEYOR_GPU_BENCH=1), and the exact round trips through the pinned host tier.
#
#   bash scripts/gpu/memory-bench.sh       on the GPU machine, from the repository root
#
# Every run is cut off at RUN_TIMEOUT seconds, and no run starts once DEADLINE seconds
# (145) are spent, so the whole script ends within the deadline. Everything each run printed
# goes to $OUT/memory-bench.txt; the summary at its end is also printed.
#
# PARTS (default "d a c b", in that order) picks the parts, to run again only what a
# first run missed. A dry run of the script on the CPU, with tiny shapes (no GPU; test_gpu
# skips):
#   PROFILE=cpu BACKEND=cpu BIN=build-mem/bin bash scripts/gpu/memory-bench.sh
set -uo pipefail
# shellcheck source=scripts/gpu/pack-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/pack-env.sh"
BIN=${BIN:-$PACK/bin}
case "$BIN" in /*) ;; *) BIN=$ROOT/$BIN ;; esac
BACKEND=${BACKEND:-cuda}
PROFILE=${PROFILE:-gpu}
PARTS=${PARTS:-d a c b}
DEADLINE=${DEADLINE:-145}
RUN_TIMEOUT=${RUN_TIMEOUT:-30}
# The disk tier's files go to a new directory under DISK_PARENT: a real file system, not
# tmpfs, where the machine has one.
DISK_PARENT=${DISK_PARENT:-/var/tmp}
DISK_DIR=$(mktemp -d "$DISK_PARENT/conveyor-kv.XXXXXX" 2>/dev/null || mktemp -d)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK" "$DISK_DIR"' EXIT
export CONVEYOR_HOME=$PACK
START=$(date +%s.%N)

# Sizes. K/V blocks are 16 tokens; bf16 on the GPU.
#   llama-1b: 16 layers x K,V x 16 x 512 (8 heads x 64) x 2 bytes = 512 KiB a block.
#   (a) 256 prompts of 64 + 128 tokens: 12 blocks each, 3072 (1.5 GiB) for the batch. The
#       tight cache of 768 MiB (1536 blocks) holds half of it, so sequences are preempted
#       all through the decode; at most about 1536 blocks (768 MiB) are out at once, which
#       the 1 GiB host tier (the default), the 1 GiB disk tier and 256 MiB host + 1 GiB
#       disk (auto) all hold. The roomy cache (4 GiB, 8192 blocks) preempts nothing.
#   (b) llama-8b (16 GB of bf16 weights; 25% = 4 GB, above its minimum of the 2.1 GB
#       embedding and head plus two 436 MB layers): 128 prompts of 64 + 12 tokens, one
#       prefill step and 11 decode steps, each streaming every layer beyond the budget
#       (about 13 GB at 25%) from host memory: about 3 s at 50 GB/s from pinned memory.
#   (c) llama-1b: 256 prompts of 512 tokens whose first 448 are shared, 8 output tokens:
#       131k prompt positions without prefix caching, about 25k with it.
if [ "$PROFILE" = cpu ]; then
  SWAP=(--shape tiny --prompts 16 --input-len 32 --output-len 32 --max-sequences 16)
  TIGHT=256KiB ROOMY=4MiB HOST_BUDGET=1MiB AUTO_HOST=64KiB DISK_BUDGET=1MiB
  WEIGHTS=(--shape smollm2-135m --prompts 4 --input-len 16 --output-len 4 --max-sequences 4)
  BUDGETS=${BUDGETS:-"100% 50% 28%"}  # 25% is below smollm2-135m's minimum
  PREFIX=(--shape tiny --prompts 32 --input-len 64 --shared-prefix 48 --output-len 4
    --max-sequences 32 --max-step-tokens 256)
else
  SWAP=(--shape llama-1b --prompts 256 --input-len 64 --output-len 128 --max-sequences 256
    --max-step-tokens 4096)
  TIGHT=768MiB ROOMY=4GiB HOST_BUDGET=1GiB AUTO_HOST=256MiB DISK_BUDGET=1GiB
  WEIGHTS=(--shape llama-8b --prompts 128 --input-len 64 --output-len 12 --max-sequences 128
    --max-step-tokens 8192)
  BUDGETS=${BUDGETS:-"100% 50% 25%"}
  PREFIX=(--shape llama-1b --prompts 256 --input-len 512 --shared-prefix 448 --output-len 8
    --max-sequences 256 --max-step-tokens 8192)
fi

REPORT=$OUT/memory-bench.txt
SUMMARY=$WORK/summary.txt
elapsed() { awk -v a="$START" -v b="$(date +%s.%N)" 'BEGIN {printf "%.0f", b - a}'; }
row() { printf '%-30s %8s %10s %9s %6s %8s %6s %6s %7s  %s\n' "$@" >>"$SUMMARY"; }
header() {
  echo "$1" >>"$SUMMARY"
  row case seconds "out tok/s" "TTFT s" steps preempt "->host" "->disk" "wall s" notes
}

# bench NAME ARGS...: one `conveyor bench`, its output to the report, one summary row.
bench() {
  local name=$1
  shift
  local left=$((DEADLINE - $(elapsed)))
  if [ "$left" -lt 10 ]; then
    row "$name" - - - - - - - - "skipped: the ${DEADLINE} s budget is spent"
    return
  fi
  local limit=$((left < RUN_TIMEOUT ? left : RUN_TIMEOUT))
  local log=$WORK/run.log
  local t0 t1
  t0=$(date +%s.%N)
  timeout "$limit" "$BIN/conveyor" bench --backend "$BACKEND" --progress off --mode continuous \
    --seed 7 "$@" >"$log" 2>&1
  local rc=$?
  t1=$(date +%s.%N)
  {
    echo "== $name: conveyor bench --backend $BACKEND $* (exit $rc)"
    cat "$log"
  } >>"$REPORT"
  local wall
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
  local result
  result=$(awk '$1 == "continuous" && NF >= 12 {print $2, $3, $5, $9, $10, $11, $12}' "$log")
  local notes=""
  local streamed
  streamed=$(grep -o "[0-9]* layers stream in" "$log" | head -n 1 | cut -d' ' -f1)
  [ -n "$streamed" ] && notes+="$streamed layers streamed; "
  local reused
  reused=$(grep -o "reused [1-9][0-9]* of [0-9]* prompt tokens" "$log" | head -n 1)
  [ -n "$reused" ] && notes+="prefix cache $reused; "
  if [ "$rc" -ne 0 ]; then
    notes+="exit $rc$([ "$rc" -eq 124 ] && echo " (cut off at ${limit} s)"): $(grep -v '^\[' "$log" |
      tail -n 1 | cut -c1-120)"
  fi
  notes=${notes%; }
  if [ -n "$result" ]; then
    # shellcheck disable=SC2086
    row "$name" $result "$wall" "$notes"
  else
    row "$name" - - - - - - - "$wall" "$notes"
  fi
  # What was pinned, or why not: once each.
  grep -ohE "(host tier of [0-9]+ blocks \([0-9]+ MiB\) pinned|[0-9.]+ MiB of streamed layers [0-9-]+ pinned|cannot pin host memory[^\"]*)" \
    "$log" | sed 's/^/    pinning: /' >>"$SUMMARY" || true
}

{
  echo "== memory-bench $(date -u +%Y-%m-%dT%H:%M:%SZ), profile $PROFILE, backend $BACKEND"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true
  "$BIN/conveyor" version 2>&1 | head -n 3
  echo "disk tier directory: $DISK_DIR ($(df -hT "$DISK_DIR" 2>/dev/null | awk 'NR == 2 {print $2 ", " $5 " free"}'))"
} | tee -a "$REPORT" >"$SUMMARY"

part_d() {
  echo "(d) K/V swap bandwidth, 256 MiB in 2 MiB blocks (test_gpu, CONVEYOR_GPU_BENCH=1)" >>"$SUMMARY"
  local left=$((DEADLINE - $(elapsed)))
  (cd "$ROOT" && TMPDIR=$DISK_DIR CONVEYOR_GPU_BENCH=1 timeout "$((left < 40 ? left : 40))" \
    "$BIN/test_gpu" -s -tc="cuda K/V*" >"$WORK/test.log" 2>&1)
  local rc=$?
  {
    echo "== test_gpu -s -tc='cuda K/V*' (exit $rc)"
    cat "$WORK/test.log"
  } >>"$REPORT"
  grep -o "MESSAGE: .*" "$WORK/test.log" | sed 's/^MESSAGE: /    /' >>"$SUMMARY"
  grep -E "ERROR|FAILED|test cases:" "$WORK/test.log" | sed 's/^/    /' >>"$SUMMARY"
  [ "$rc" -eq 124 ] && echo "    test_gpu cut off at its time limit" >>"$SUMMARY"
}

part_a() {
  header "(a) preemption by swap against recompute: ${SWAP[*]}"
  # No host tier where nothing swaps: it would only be pinned (and cached prefix blocks
  # evicted from the device would move there).
  bench "roomy cache ($ROOMY)" "${SWAP[@]}" --kv-device-budget "$ROOMY" --preemption recompute \
    --kv-host-budget 0
  bench "tight ($TIGHT), recompute" "${SWAP[@]}" --kv-device-budget "$TIGHT" \
    --preemption recompute --kv-host-budget 0
  bench "tight, swap to host" "${SWAP[@]}" --kv-device-budget "$TIGHT" --preemption swap \
    --kv-host-budget "$HOST_BUDGET"
  bench "tight, swap to disk" "${SWAP[@]}" --kv-device-budget "$TIGHT" --preemption swap \
    --kv-host-budget 0 --kv-disk-dir "$DISK_DIR" --kv-disk-budget "$DISK_BUDGET"
  bench "tight, auto (host+disk)" "${SWAP[@]}" --kv-device-budget "$TIGHT" --preemption auto \
    --kv-host-budget "$AUTO_HOST" --kv-disk-dir "$DISK_DIR" --kv-disk-budget "$DISK_BUDGET"
}

part_c() {
  header "(c) prefix caching on a shared-prefix job: ${PREFIX[*]}"
  bench "prefix caching on" "${PREFIX[@]}" --kv-host-budget 0
  bench "--no-prefix-caching" "${PREFIX[@]}" --kv-host-budget 0 --no-prefix-caching
}

part_b() {
  header "(b) weight budget: ${WEIGHTS[*]}"
  local budget
  for budget in $BUDGETS; do
    bench "weight budget $budget" "${WEIGHTS[@]}" --kv-host-budget 0 \
      --weight-device-budget "$budget"
  done
}

for part in $PARTS; do
  case "$part" in
    a | b | c | d) "part_$part" ;;
    *) echo "unknown part '$part' (a, b, c, d)" >>"$SUMMARY" ;;
  esac
done

echo "total $(elapsed) s (deadline $DEADLINE s); everything in $REPORT" >>"$SUMMARY"
{
  echo "== summary"
  cat "$SUMMARY"
} >>"$REPORT"
cat "$SUMMARY"
