#!/usr/bin/env bash
# Throughput of a cluster on this machine: one coordinator and S workers forming one
# pipeline replica of S stages (joined over UCX), for each S given, on the same job;
# and `conveyor run` with the same S stages as threads of one process, on the same job,
# for reference. Each worker gets THREADS / S CPU threads (at least 1), so every
# configuration has the same cores. `run` times include loading the model (about 0.1 s);
# cluster times start when the replica is live.
#
#   scripts/bench-cluster.sh [STAGES...]        default: 1 2 3
#   REQUESTS=64 MAX_TOKENS=64 THREADS=2 scripts/bench-cluster.sh 1 2 3
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CONVEYOR_BIN:-$ROOT/build/bin/conveyor}
MODEL=${MODEL:-smollm2-135m-instruct}
REQUESTS=${REQUESTS:-64}
MAX_TOKENS=${MAX_TOKENS:-64}
THREADS=${THREADS:-$(nproc)}
STAGES=("$@")
((${#STAGES[@]})) || STAGES=(1 2 3)
WORK=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

python3 - "$WORK/in.jsonl" "$REQUESTS" "$MAX_TOKENS" <<'PY'
import json, sys
path, n, max_tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "w") as f:
    for i in range(n):
        body = {"prompt": f"Write a short story about robot number {i} who learns to paint.",
                "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True}
        f.write(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/completions",
                            "body": body}) + "\n")
PY
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
tokens=$((REQUESTS * MAX_TOKENS))

start=$(date +%s.%N)
"$BIN" run --model "$MODEL" -i "$WORK/in.jsonl" -o "$WORK/run.jsonl" --threads "$THREADS" \
  --progress off >"$WORK/run.log" 2>&1
end=$(date +%s.%N)
wall=$(elapsed "$start" "$end")
echo "conveyor run (1 process, $THREADS threads): $wall s, $(awk -v t=$tokens -v w="$wall" 'BEGIN {printf "%.1f", t / w}') output tok/s"

for s in "${STAGES[@]}"; do
  producers=$(free_port); workers=$(free_port)
  per_worker=$((THREADS / s)); ((per_worker >= 1)) || per_worker=1
  cat >"$WORK/cluster.yaml" <<YAML
model: $MODEL
cluster:
  stages: $s
  plan_delay_seconds: 0.2
YAML
  rm -rf "$WORK/journal"
  "$BIN" coordinator --config "$WORK/cluster.yaml" --listen "tcp://127.0.0.1:$producers" \
    --worker-listen "tcp://127.0.0.1:$workers" --journal "$WORK/journal" >"$WORK/coord-$s.log" 2>&1 &
  pids+=($!)
  for ((w = 1; w <= s; w++)); do
    "$BIN" worker --coordinator "tcp://127.0.0.1:$workers" --threads "$per_worker" --name "w$w" \
      >"$WORK/w$w-$s.log" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 300); do grep -q "live:" "$WORK/coord-$s.log" && break; sleep 0.1; done
  grep -q "live:" "$WORK/coord-$s.log" || { cat "$WORK/coord-$s.log" >&2; exit 1; }
  rm -f "$WORK/out.jsonl"
  start=$(date +%s.%N)
  "$BIN" submit --coordinator "tcp://127.0.0.1:$producers" --input "$WORK/in.jsonl" \
    --output "$WORK/out-$s.jsonl" --job-id "bench-$s" --wait >"$WORK/submit-$s.log" 2>&1
  end=$(date +%s.%N)
  wall=$(elapsed "$start" "$end")
  transport=$(grep -oh "sending activations to .*" "$WORK"/w*-"$s".log | head -1 | sed 's/^sending activations to [^ ]* over //' || true)
  echo "cluster, $s stage(s), $s worker(s) x $per_worker thread(s): $wall s, $(awk -v t=$tokens -v w="$wall" 'BEGIN {printf "%.1f", t / w}') output tok/s | activations: ${transport:-none (one stage)}"
  # The same stages as threads of one process, to tell the pipeline's cost from the network's.
  start=$(date +%s.%N)
  "$BIN" run --model "$MODEL" -i "$WORK/in.jsonl" -o "$WORK/run-$s.jsonl" --threads "$THREADS" \
    --stages "$s" --progress off >"$WORK/run-$s.log" 2>&1
  end=$(date +%s.%N)
  wall=$(elapsed "$start" "$end")
  echo "conveyor run --stages $s (threads of one process): $wall s, $(awk -v t=$tokens -v w="$wall" 'BEGIN {printf "%.1f", t / w}') output tok/s"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
done
echo "job: $REQUESTS requests x $MAX_TOKENS output tokens, model $MODEL, $(nproc) cores, cpu \"$(lscpu | sed -n 's/^Model name:\s*//p')\""
