#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (in build-fuzz/, configured on first
# use) and runs each for SECONDS_PER_TARGET seconds (default 15), starting from a copy
# of its seed corpus in a temporary directory, so the repository stays as it was.
# Fails when any target crashes, leaks, hangs or trips a sanitizer; the input that did
# it is kept in build-fuzz/crashes/. Prints each target's executions.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_CXX (default clang++),
#   FUZZ_MAX_LEN (default 4096: bytes per input), FUZZ_TARGETS (names to run; default all).
# Exit 77 (CTest: skipped) when clang++ with libFuzzer is not installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_PER_TARGET="${1:-15}"
BUILD_DIR="${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
CXX_FUZZ="${FUZZ_CXX:-clang++}"
MAX_LEN="${FUZZ_MAX_LEN:-4096}"

log() { echo "fuzz: $*"; }

if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [ "$SECONDS_PER_TARGET" -lt 1 ]; then
  echo "usage: $0 [SECONDS_PER_TARGET]" >&2
  exit 2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/conveyor-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# clang with libFuzzer (Debian: clang and libclang-rt-dev), or skip.
if ! command -v "$CXX_FUZZ" >/dev/null; then
  log "$CXX_FUZZ not installed: skipped (scripts/setup.sh installs clang)"
  exit 77
fi
printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' \
  >"$work/probe.cpp"
if ! "$CXX_FUZZ" -fsanitize=fuzzer,address,undefined "$work/probe.cpp" -o "$work/probe" \
  >/dev/null 2>&1; then
  log "$CXX_FUZZ cannot link libFuzzer: skipped (install libclang-rt-dev)"
  exit 77
fi

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  log "configuring $BUILD_DIR"
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S "$ROOT/fuzz" -B "$BUILD_DIR" -G Ninja -DCMAKE_CXX_COMPILER="$CXX_FUZZ" \
    "${launcher[@]}" >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; exit 1; }
fi
log "building"
cmake --build "$BUILD_DIR" -j"${FUZZ_JOBS:-2}" >"$work/build.log" 2>&1 || {
  tail -n 80 "$work/build.log"
  exit 1
}

targets=()
for bin in "$BUILD_DIR"/bin/*_fuzz; do
  [ -x "$bin" ] || continue
  name="$(basename "$bin")"
  if [ -n "${FUZZ_TARGETS:-}" ] && ! [[ " $FUZZ_TARGETS " == *" $name "* ]]; then continue; fi
  targets+=("$name")
done
if ((${#targets[@]} == 0)); then
  log "no fuzz targets built"
  exit 1
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
failed=()
summary=()
for name in "${targets[@]}"; do
  corpus="$work/$name/corpus"
  artifacts="$work/$name/artifacts"
  mkdir -p "$corpus" "$artifacts"
  if [ -d "$ROOT/fuzz/corpus/$name" ]; then cp -R "$ROOT/fuzz/corpus/$name/." "$corpus/"; fi
  if [ -x "$BUILD_DIR/bin/${name}_seeds" ]; then "$BUILD_DIR/bin/${name}_seeds" "$corpus"; fi
  log "running $name for ${SECONDS_PER_TARGET}s ($(find "$corpus" -type f | wc -l) seeds)"
  status=0
  # From inside the scratch directory: libFuzzer writes nothing into the repository.
  (cd "$work/$name" && "$BUILD_DIR/bin/$name" -max_total_time="$SECONDS_PER_TARGET" \
    -rss_limit_mb=1024 -max_len="$MAX_LEN" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus") >"$work/$name.log" 2>&1 || status=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name.log" | tail -n 1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$name.log" | tail -n 1)"
  coverage="$(grep -o 'cov: [0-9]*' "$work/$name.log" | tail -n 1 | sed 's/cov: //')"
  if [ "$status" -ne 0 ]; then
    failed+=("$name")
    mkdir -p "$BUILD_DIR/crashes"
    for artifact in "$artifacts"/*; do
      [ -f "$artifact" ] || continue
      kept="$BUILD_DIR/crashes/$name-$(basename "$artifact")"
      cp "$artifact" "$kept"
      log "$name: input kept in $kept ($(wc -c <"$kept") bytes): $(head -c 256 "$kept" | base64 -w0)"
    done
    tail -n 60 "$work/$name.log"
    summary+=("$(printf '%-26s FAILED (exit %s) after %s execs' "$name" "$status" "${execs:-?}")")
  else
    summary+=("$(printf '%-26s %10s execs  %6s/s  cov %s' "$name" "${execs:-?}" "${rate:-?}" \
      "${coverage:-?}")")
  fi
done

echo
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  log "failed: ${failed[*]}"
  exit 1
fi
log "ok: ${#targets[@]} targets, ${SECONDS_PER_TARGET}s each"
