#!/usr/bin/env bash
# Times `conveyor run` end to end (process start to exit: model load, tokenisation,
# generation, writing results) on the default model and a batch file, as the median of
# several runs, each into a fresh output file.
#
#   scripts/bench-run.sh [RUNS] [INPUT] [extra run flags...]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CONVEYOR_BIN:-$ROOT/build/bin/conveyor}
RUNS=${1:-3}
INPUT=${2:-$ROOT/examples/prompts.jsonl}
shift $(( $# > 2 ? 2 : $# ))
MODEL=${MODEL:-smollm2-135m-instruct}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

walls=(); rates=()
for ((i = 0; i < RUNS; i++)); do
  rm -f "$WORK"/out*.jsonl
  start=$(date +%s.%N)
  # Exit code 2 (some lines failed) is expected for files with deliberately bad lines.
  summary=$("$BIN" run --model "$MODEL" -i "$INPUT" -o "$WORK/out.jsonl" --progress off "$@" 2>&1 |
    grep '^\[run\] [0-9]* lines' || true)
  [[ -n $summary ]] || { echo "conveyor run failed" >&2; exit 1; }
  end=$(date +%s.%N)
  wall=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.2f", b - a}')
  walls+=("$wall")
  rates+=("$(sed -E 's/.*s: ([0-9.]+) tok\/s.*/\1/' <<<"$summary")")
  echo "run $((i + 1)): ${wall} s wall | $summary" >&2
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
echo "input=$(basename "$INPUT") lines=$(grep -c . "$INPUT") model=$MODEL runs=$RUNS threads=$(nproc) cpu=\"$(lscpu | sed -n 's/^Model name:\s*//p')\""
echo "median: $(median "${walls[@]}") s end to end, $(median "${rates[@]}") generated tok/s during the job"
