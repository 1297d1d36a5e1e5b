#!/usr/bin/env bash
# Checks the monitoring files against the code: the Prometheus alert rules
# (deploy/prometheus: promtool check rules on the plain file and on the PrometheusRule's
# spec, which must hold the same groups; promtool test rules on
# tests/monitoring/conveyor-rules.test.yaml), and the Grafana dashboard (deploy/grafana:
# it loads, uses the `datasource` variable, every query parses and names only metrics the
# C++ sources export, the sidecar ConfigMap holds the same dashboard). With a conveyor
# binary it also scrapes a real `conveyor bench`: `promtool check metrics` on the scrape,
# and every conveyor_engine_ metric the dashboard and the rules use must be in it.
# tests/monitoring/check_monitoring.py does the checking, and in a self-test breaks copies
# of the files to see each fault reported.
#
#   scripts/check-monitoring.sh         (CONVEYOR_BINARY=path: the binary for the scrape;
#                                        default build/bin/conveyor, skipped when absent)
# Needs promtool (Debian: prometheus) and python3 with PyYAML (Debian: python3-yaml).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

fail() { printf 'check-monitoring: FAIL %s\n' "$*" >&2; exit 1; }

command -v promtool >/dev/null || fail "promtool is not installed (scripts/setup.sh installs the Debian package prometheus)"
PYTHON=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import yaml' 2>/dev/null; then PYTHON=$p; break; fi
done
[ -n "$PYTHON" ] || fail "no python3 with PyYAML (Debian: python3-yaml)"

out=$(mktemp -d)
bench_pid=""
cleanup() {
  if [ -n "$bench_pid" ]; then kill "$bench_pid" 2>/dev/null || true; wait "$bench_pid" 2>/dev/null || true; fi
  rm -rf "$out"
}
trap cleanup EXIT

# ---- alert rules ------------------------------------------------------------------------
promtool check rules deploy/prometheus/conveyor-rules.yaml || fail "deploy/prometheus/conveyor-rules.yaml"
"$PYTHON" - deploy/prometheus/conveyor-prometheusrule.yaml "$out/prometheusrule-spec.yaml" <<'EOF'
import sys, yaml
with open(sys.argv[1], encoding="utf-8") as f:
    doc = yaml.safe_load(f)
with open(sys.argv[2], "w", encoding="utf-8") as f:
    yaml.safe_dump(doc["spec"], f, sort_keys=False)
EOF
promtool check rules "$out/prometheusrule-spec.yaml" || fail "the spec of deploy/prometheus/conveyor-prometheusrule.yaml"
promtool test rules tests/monitoring/conveyor-rules.test.yaml || fail "tests/monitoring/conveyor-rules.test.yaml (above)"

# ---- a real scrape ----------------------------------------------------------------------
fetch() {
  if command -v curl >/dev/null; then
    curl -sf --max-time 5 "$1"
  else
    "$PYTHON" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"
  fi
}

BINARY=${CONVEYOR_BINARY:-$ROOT/build/bin/conveyor}
scrape_arg=()
if [ -x "$BINARY" ]; then
  port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # Long enough (tens of seconds) not to end before the first scrape; killed once scraped.
  "$BINARY" bench --shape tiny --prompts 100000 --input-len 32 --output-len 32 --mode continuous \
    --metrics-port "$port" >"$out/bench.log" 2>&1 &
  bench_pid=$!
  # Retried until the engine's metrics answer, for as long as the bench runs.
  scraped=0
  while kill -0 "$bench_pid" 2>/dev/null; do
    if fetch "http://127.0.0.1:$port/metrics" >"$out/metrics.txt" 2>/dev/null &&
      grep -q '^conveyor_engine_steps_total' "$out/metrics.txt"; then
      scraped=1
      break
    fi
    sleep 0.1
  done
  if [ "$scraped" != 1 ]; then
    cat "$out/bench.log" >&2
    fail "conveyor bench ended before its /metrics on port $port answered with the engine's metrics"
  fi
  kill "$bench_pid" 2>/dev/null || true
  wait "$bench_pid" 2>/dev/null || true
  bench_pid=""

  # promtool exits 1 on parse errors and on lint problems alike: a scrape it cannot read,
  # or a lint problem of a conveyor_ metric, fails; others (the HTTP server's own
  # metrics) are printed as warnings.
  if ! promtool check metrics <"$out/metrics.txt" >"$out/lint.txt" 2>&1; then
    if grep -q 'error while linting' "$out/lint.txt"; then
      cat "$out/lint.txt" >&2
      fail "promtool cannot read the /metrics of conveyor bench"
    fi
    if grep -q '^conveyor_' "$out/lint.txt"; then
      cat "$out/lint.txt" >&2
      fail "promtool check metrics: lint problems in conveyor_ metrics (above)"
    fi
    sed 's/^/check-monitoring: warning: /' "$out/lint.txt"
  fi
  echo "scraped $(grep -c '^conveyor_' "$out/metrics.txt") conveyor_ samples from conveyor bench"
  scrape_arg=(--scrape "$out/metrics.txt")
else
  echo "check-monitoring: no conveyor binary at $BINARY: the scrape is skipped"
fi

# ---- the dashboard, the ConfigMap, the rules against the exported metrics ---------------
"$PYTHON" tests/monitoring/check_monitoring.py --root "$ROOT" --promtool "$(command -v promtool)" \
  --self-test "${scrape_arg[@]}" || fail "deploy/grafana or deploy/prometheus (above)"
echo "monitoring ok"
