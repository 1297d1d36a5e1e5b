#!/usr/bin/env bash
# Preemption by swap against recompute: `conveyor bench` on a random-weight shape with a
# K/V cache far smaller than the batch needs, so that sequences are preempted all the
# time, resuming by recompute, by swap to the host tier, by swap to the disk tier (no
# host tier), and as the cost model chooses (auto), next to a cache that holds them all.
#
#   scripts/bench-swap.sh [SHAPE] [PROMPTS] [INPUT] [OUTPUT] [KV_BLOCKS]
#   default: smollm2-135m 32 128 64 96; DISK_DIR (default: a directory under /var/tmp)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CONVEYOR_BIN:-$ROOT/build/bin/conveyor}
SHAPE=${1:-smollm2-135m}
PROMPTS=${2:-32}
INPUT=${3:-128}
OUTPUT=${4:-64}
KV_BLOCKS=${5:-96}
DISK_DIR=${DISK_DIR:-$(mktemp -d /var/tmp/conveyor-swap.XXXXXX)}
trap 'rm -rf "$DISK_DIR"' EXIT

common=(bench --shape "$SHAPE" --prompts "$PROMPTS" --input-len "$INPUT" --output-len "$OUTPUT"
  --mode continuous --max-sequences "$PROMPTS" --seed 7)
tight=(--kv-blocks "$KV_BLOCKS")
echo "shape $SHAPE, $PROMPTS prompts x $INPUT in / $OUTPUT out, tight cache: $KV_BLOCKS blocks"
printf '%-24s %9s %10s %8s %7s %7s\n' case seconds "out tok/s" preempt "->host" "->disk"
run() {
  local name=$1
  shift
  "$BIN" "${common[@]}" "$@" --json 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)["runs"][0]
print("%-24s %9.2f %10.1f %8d %7d %7d" % (sys.argv[1], r["seconds"],
      r["output_tokens_per_second"], r["preemptions"], r["swaps_to_host"], r["swaps_to_disk"]))
' "$name"
}
run "roomy cache" --preemption recompute
run "tight, recompute" "${tight[@]}" --preemption recompute
run "tight, swap to host" "${tight[@]}" --preemption swap
run "tight, swap to disk" "${tight[@]}" --preemption swap --kv-host-budget 0 \
  --kv-disk-dir "$DISK_DIR" --kv-disk-budget 4GiB
run "tight, auto (host+disk)" "${tight[@]}" --preemption auto --kv-host-budget 64MiB \
  --kv-disk-dir "$DISK_DIR" --kv-disk-budget 4GiB
