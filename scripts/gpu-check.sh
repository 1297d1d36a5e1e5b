#!/usr/bin/env bash
# The GPU check, in two halves because the GPU machine lacks our Debian libraries:
#
#   scripts/gpu-check.sh pack          here: CUDA build for sm_90a (BUILD, default build-gpu),
#                                      the binaries (TARGETS, default conveyor and every test)
#                                      and the shared libraries they need into gpu-pack/
#                                      (git-ignored), stripped
#   scripts/gpu-check.sh run           on the GPU machine (device tool, carry gpu-pack):
#                                      GPU tests (kernel twins, hf-tiny and SmolLM2 parity),
#                                      `conveyor version`; results in $OUT/gpu-check.txt
#   scripts/gpu-check.sh bench "A" ... there: `conveyor bench --backend cuda A` for each
#                                      argument; tables in $OUT/bench.txt
#
# The model cache does not travel (the default model alone is over the 64 MiB that a
# call carries); the run uses the fixtures in the working tree, and the SmolLM2 checks
# only where gpu-pack/models holds the GGUF.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PACK=$ROOT/gpu-pack
mode=${1:-}

case "$mode" in
  pack)
    BUILD=${BUILD:-$ROOT/build-gpu}
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONVEYOR_WITH_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90a >/dev/null
    if [ -n "${TARGETS:-}" ]; then
      # shellcheck disable=SC2086
      cmake --build "$BUILD" -j"$(nproc)" --target $TARGETS
    else
      cmake --build "$BUILD" -j"$(nproc)"
      TARGETS="conveyor $(cd "$BUILD/bin" && echo test_*)"
    fi
    rm -rf "$PACK"
    mkdir -p "$PACK/bin" "$PACK/models"
    for t in $TARGETS; do cp "$BUILD/bin/$t" "$PACK/bin/"; done
    strip "$PACK"/bin/*
    "$ROOT/scripts/gpu/pack-for-gpu.sh" "$PACK" "$PACK"/bin/*
    # The tests find their fixtures under the source path compiled into them.
    echo "$ROOT" >"$PACK/source-dir"
    du -sh "$PACK"
    ;;
  run)
    # shellcheck source=scripts/gpu/pack-env.sh
    source "$ROOT/scripts/gpu/pack-env.sh"
    export CONVEYOR_HOME=$PACK  # models/ inside it
    export CONVEYOR_BINARY=$PACK/bin/conveyor
    src=$(cat "$PACK/source-dir")
    if [ "$src" != "$ROOT" ] && [ ! -e "$src" ]; then
      mkdir -p "$(dirname "$src")" && ln -s "$ROOT" "$src"
    fi
    # The default model is larger than one call carries: it may travel in two parts
    # (gpu-models/part1, part2; see docs/performance.md), joined here once both came.
    model=$PACK/models/SmolLM2-135M-Instruct.Q4_1.gguf
    if [ ! -f "$model" ] && [ -f "$ROOT/gpu-models/part1" ] && [ -f "$ROOT/gpu-models/part2" ]; then
      mkdir -p "$PACK/models"
      cat "$ROOT/gpu-models/part1" "$ROOT/gpu-models/part2" >"$model"
      [ "$(sha256sum "$model" | cut -c1-64)" = "$(cat "$ROOT/gpu-models/sha256")" ] || rm -f "$model"
    fi
    report=$OUT/gpu-check.txt
    status=0
    {
      echo "== nvidia-smi"; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv || true
      echo "== conveyor version"; "$PACK/bin/conveyor" version
      for t in "$PACK"/bin/test_*; do
        name=$(basename "$t")
        echo "== $name"
        # -s keeps each case's MESSAGE lines (errors, agreement figures and kernel
        # timings, which CONVEYOR_GPU_BENCH turns on) in the log.
        (cd "$ROOT" && CONVEYOR_GPU_BENCH=1 "$t" -s >"$OUT/$name.log" 2>&1) || status=1
        grep -E "MESSAGE|ERROR|FAILED|test cases:|assertions:" "$OUT/$name.log" | tail -n 60
      done
      if [ -f "$model" ]; then
        echo "== generate on the GPU"
        "$PACK/bin/conveyor" generate --model smollm2-135m-instruct --backend cuda \
          --prompt "What is the capital of France?" --max-tokens 32 --temperature 0 2>&1
      fi
    } >"$report" 2>&1 || status=1
    tail -n 60 "$report"
    exit "$status"
    ;;
  bench)
    # One `conveyor bench` per argument, each a quoted list of bench flags, each run
    # cut off at BENCH_TIMEOUT seconds; tables to $OUT/bench.txt.
    shift
    # shellcheck source=scripts/gpu/pack-env.sh
    source "$ROOT/scripts/gpu/pack-env.sh"
    for args in "$@"; do
      echo "== conveyor bench --backend cuda $args" | tee -a "$OUT/bench.txt"
      # shellcheck disable=SC2086
      timeout "${BENCH_TIMEOUT:-150}" "$PACK/bin/conveyor" bench --backend cuda --progress off \
        $args 2>&1 | tee -a "$OUT/bench.txt" | grep -vE "^\[progress\]" | tail -n 8 || true
    done
    ;;
  *)
    echo "usage: $0 pack|run|bench ARGS..." >&2
    exit 2
    ;;
esac
