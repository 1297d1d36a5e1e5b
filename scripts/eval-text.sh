#!/usr/bin/env bash
# The texts of `conveyor eval` and `conveyor compress --calib`: the King James Bible
# (public domain, English) from the Debian packages bible-kjv (the `bible` program) and
# bible-kjv-text (its text). Two books that share no verse, so that what calibrates a
# compression never scores it:
#   calibration.txt  Genesis (1533 verses)
#   evaluation.txt   the Gospel of John (879 verses)
# Plain UTF-8, one verse per line, the verse references ("Ge1:1 ", "John1:1 ") removed.
#
#   scripts/eval-text.sh OUT_DIR
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
OUT=$1
if ! command -v bible >/dev/null; then
  echo "eval-text: the 'bible' program is missing: apt-get install bible-kjv bible-kjv-text" >&2
  exit 1
fi
mkdir -p "$OUT"

# book RANGE FILE VERSES: the verses of RANGE without their references, checked by count
# so that a changed package or a reference the pattern misses cannot pass unnoticed.
book() {
  local range=$1 file=$2 verses=$3
  local tmp
  tmp=$(mktemp)
  bible -f "$range" >"$tmp"
  # Every line is "<book><chapter>:<verse> <text>"; book names may start with a digit.
  local reference='^[1-3]?[A-Za-z]+[0-9]+:[0-9]+ '
  if grep -vqE "$reference" "$tmp"; then
    echo "eval-text: $range: a line without a verse reference:" >&2
    grep -vE -m1 "$reference" "$tmp" >&2 || true
    rm -f "$tmp"
    exit 1
  fi
  sed -E "s/$reference//" "$tmp" >"$file"
  rm -f "$tmp"
  local got
  got=$(wc -l <"$file")
  if [ "$got" -ne "$verses" ]; then
    echo "eval-text: $range gave $got verses, expected $verses" >&2
    exit 1
  fi
  echo "$file: $got verses, $(wc -c <"$file") bytes"
}

book "Genesis1:1-Genesis50:26" "$OUT/calibration.txt" 1533
book "John1:1-John21:25" "$OUT/evaluation.txt" 879
