#!/usr/bin/env bash
# The table of docs/compression.md: SmolLM2-135M-Instruct compressed by every method and
# pruning mode, each measured against the model as loaded (its Q4_1 GGUF, dequantised):
# size on disk, perplexity on held-out text, mean KL(original || compressed), top-1
# agreement, and generation throughput (`conveyor bench`-like decode through `run`).
#
#   scripts/compression-table.sh [EVAL_TOKENS]       default 4096
#   MODEL=... WORK=dir (kept) CONVEYOR_BIN=...
#   ONLY=REGEX   only the rows whose name matches (grep -E), e.g. ONLY='layers|mixed'

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CONVEYOR_BIN:-$ROOT/build/bin/conveyor}
MODEL=${MODEL:-smollm2-135m-instruct}
TOKENS=${1:-4096}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
"$ROOT/scripts/eval-text.sh" "$WORK/texts" >/dev/null
CALIB="$WORK/texts/calibration.txt"
EVAL="$WORK/texts/evaluation.txt"

# name | compress arguments (empty: the original)
CASES=(
  "original|"
  "int8|--method int8"
  "int4 (min/max)|--method int4 --no-awq"
  "int4 (AWQ, 256 tokens)|--method int4 --calib $CALIB --calib-tokens 256"
  "int4 groups of 32|--method int4 --group 32"
  "fp8 (W8A8)|--method fp8"
  "int8 + magnitude 30%|--method int8 --prune magnitude:0.3"
  "int8 + Wanda 30%|--method int8 --prune wanda:0.3 --calib $CALIB --calib-tokens 256"
  "int8 + 2:4|--method int8 --prune 2:4"
  "int4 + Wanda 30%|--method int4 --no-awq --prune wanda:0.3 --calib $CALIB --calib-tokens 256"
  "f16 + 2:4 (stored s24_f16)|--method f16 --prune 2:4"
  "int8 + layers:1|--method int8 --prune layers:1 --calib $CALIB --calib-tokens 256"
  "mixed, 100 MiB target|--method mixed --target-size 100MiB --calib $CALIB --calib-tokens 256"
)

size_of() {  # bytes on disk of a model file or directory
  if [ -d "$1" ]; then du -sb "$1" | cut -f1; else stat -L -c %s "$1"; fi
}

echo "| model | size on disk | perplexity | KL vs original | top-1 agreement | output tok/s |"
echo "|---|---|---|---|---|---|"
original_path=$("$BIN" inspect "$MODEL" 2>/dev/null | sed -n 's/^model: *//p' | head -1)
# Throughput: 32 chat requests of 64 greedy tokens each through `conveyor run`.
python3 - "$WORK/requests.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(32):
        body = {"messages": [{"role": "user", "content": f"Tell me a fact about the number {i}."}],
                "max_tokens": 64, "temperature": 0, "ignore_eos": True}
        f.write(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
                            "body": body}) + "\n")
PY
for entry in "${CASES[@]}"; do
  name=${entry%%|*}
  args=${entry#*|}
  if [ -n "${ONLY:-}" ] && ! echo "$name" | grep -qE "$ONLY"; then continue; fi
  if [ -z "$args" ]; then
    model=$MODEL
    size=$(size_of "${original_path:-$MODEL}")
  else
    model="$WORK/$(echo "$name" | tr -c 'a-z0-9' '-')"
    rm -rf "$model"  # a kept WORK may hold an earlier run's
    # shellcheck disable=SC2086
    "$BIN" compress --model "$MODEL" --out "$model" $args >"$model.log" 2>&1
    size=$(size_of "$model")
  fi
  json=$("$BIN" eval --model "$model" --reference "$MODEL" --text "$EVAL" --max-tokens "$TOKENS" \
    --json -q)
  rm -f "$WORK/out.jsonl" "$WORK/out.errors.jsonl"
  speed=$("$BIN" run --model "$model" --progress off -i "$WORK/requests.jsonl" \
    -o "$WORK/out.jsonl" 2>&1 | sed -n 's/.* s: \([0-9.]*\) tok\/s.*/\1/p' | head -1)
  python3 - "$name" "$size" "$speed" "$json" <<'PY'
import json, sys
name, size, speed, raw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
r = json.loads(raw)
print(f"| {name} | {size / 2**20:.1f} MiB | {r['perplexity']:.3f} | {r['kl_mean']:.4f} | "
      f"{100 * r['top1_agreement']:.1f}% | {speed} |")
PY
done
