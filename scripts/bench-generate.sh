#!/usr/bin/env bash
# Measures `conveyor generate` on the default model: load time, time to first token and
# decode tokens/s, as the median of several runs (greedy, EOS ignored, so every run
# generates the same number of tokens).
#
#   scripts/bench-generate.sh [RUNS] [MAX_TOKENS] [extra generate flags...]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CONVEYOR_BIN:-$ROOT/build/bin/conveyor}
RUNS=${1:-5}
TOKENS=${2:-128}
shift $(( $# > 2 ? 2 : $# ))
MODEL=${MODEL:-smollm2-135m-instruct}
PROMPT=${PROMPT:-"Write a short story about a robot who learns to paint."}

rates=(); firsts=(); loads=()
for ((i = 0; i < RUNS; i++)); do
  line=$("$BIN" generate --model "$MODEL" --prompt "$PROMPT" --max-tokens "$TOKENS" \
    --temperature 0 --ignore-eos "$@" 2>&1 >/dev/null | grep '^\[generate\]')
  loads+=("$(sed -E 's/.*load ([0-9.]+) s.*/\1/' <<<"$line")")
  firsts+=("$(sed -E 's/.*first token ([0-9.]+) s.*/\1/' <<<"$line")")
  rates+=("$(sed -E 's/.*: ([0-9.]+) tok\/s decode.*/\1/' <<<"$line")")
  echo "run $((i + 1)): $line" >&2
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
echo "model=$MODEL tokens=$TOKENS runs=$RUNS threads=$(nproc) cpu=\"$(lscpu | sed -n 's/^Model name:\s*//p')\""
echo "median: load $(median "${loads[@]}") s, first token $(median "${firsts[@]}") s, decode $(median "${rates[@]}") tok/s"
