#!/usr/bin/env bash
# The speed-up from prefix caching on a job whose requests share a long prefix: N
# `/v1/chat/completions` requests with the same system prompt (about 230 tokens with the
# chat template) and their own question, run by `conveyor run` with prefix caching (the
# default) and with --no-prefix-caching, in that order and again, each into a fresh output.
#
#   scripts/bench-prefix.sh [REQUESTS] [MAX_TOKENS]      default: 48 16
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CONVEYOR_BIN:-$ROOT/build/bin/conveyor}
MODEL=${MODEL:-smollm2-135m-instruct}
REQUESTS=${1:-48}
MAX_TOKENS=${2:-16}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

python3 - "$WORK/in.jsonl" "$REQUESTS" "$MAX_TOKENS" <<'PY'
import json, sys
path, n, max_tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
system = (
    "You are a careful assistant for a public library. Answer in one short sentence. "
    "The library opens at nine in the morning and closes at six in the evening on weekdays, "
    "and at four on Saturdays; it is closed on Sundays and public holidays. Members may borrow "
    "up to twelve books, four films and two games at a time, for three weeks, and renew each "
    "item twice unless someone has reserved it. Late returns cost ten cents a day per item, up "
    "to the price of the item. Lost cards are replaced at the front desk for two dollars. The "
    "reading rooms are on the second floor, the children's section is on the ground floor, and "
    "the study rooms can be booked online for two hours a day. Printing costs ten cents a page "
    "in black and white and fifty cents in colour; the scanners are free. Wireless internet is "
    "open to everyone without a password, and the computers on the first floor can be used for "
    "one hour a day with a library card. Events for adults are announced on the board by the "
    "entrance, and story time for children is on Wednesday and Saturday mornings at ten.")
with open(path, "w") as f:
    for i in range(n):
        body = {"messages": [{"role": "system", "content": system},
                             {"role": "user", "content": f"Question {i}: how many books can I borrow, and for how long?"}],
                "max_tokens": max_tokens, "temperature": 0}
        f.write(json.dumps({"custom_id": f"q{i}", "method": "POST", "url": "/v1/chat/completions",
                            "body": body}) + "\n")
PY
run() {
  rm -f "$WORK"/out*.jsonl
  local start end
  start=$(date +%s.%N)
  "$BIN" run --model "$MODEL" -i "$WORK/in.jsonl" -o "$WORK/out.jsonl" --progress off "$@" \
    >"$WORK/run.log" 2>&1
  end=$(date +%s.%N)
  local summary
  summary=$(grep -o "[0-9]* prefill + [0-9]* generated tokens in [0-9.]* s.*prefix cache" "$WORK/run.log" || true)
  echo "$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.2f", b - a}') s | $summary"
}
for round in 1 2; do
  echo "round $round, prefix caching on:  $(run)"
  cp "$WORK/out.jsonl" "$WORK/with.jsonl"
  echo "round $round, prefix caching off: $(run --no-prefix-caching)"
  cp "$WORK/out.jsonl" "$WORK/without.jsonl"
done
python3 - "$WORK/with.jsonl" "$WORK/without.jsonl" <<'PY'
import json, sys
def answers(path):
    return {j["custom_id"]: j["response"]["body"]["choices"][0]["message"]["content"]
            for j in map(json.loads, open(path))}
a, b = answers(sys.argv[1]), answers(sys.argv[2])
same = sum(a[k] == b.get(k) for k in a)
print(f"outputs: {same} of {len(a)} answers identical with and without prefix caching")
sys.exit(0 if same == len(a) == len(b) else 1)
PY
echo "job: $REQUESTS chat requests sharing one system prompt, $MAX_TOKENS output tokens each, model $MODEL, $(nproc) cores"
