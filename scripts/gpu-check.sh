#!/usr/bin/env bash
# The GPU check, in two halves because the GPU machine lacks our Debian libraries:
#
#   scripts/gpu-check.sh pack          here: CUDA build for sm_90a, binaries and the shared
#                                      libraries they need into gpu-pack/ (git-ignored)
#   scripts/gpu-check.sh run           on the GPU machine (device tool, carry gpu-pack):
#                                      GPU tests, `conveyor version`, parity and speed
#                                      checks; results in $OUT/gpu-check.txt
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
    BUILD=$ROOT/build-gpu
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONVEYOR_WITH_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90a >/dev/null
    cmake --build "$BUILD" -j"$(nproc)"
    rm -rf "$PACK"
    mkdir -p "$PACK/bin" "$PACK/models"
    cp "$BUILD"/bin/conveyor "$BUILD"/bin/test_* "$PACK/bin/"
    "$ROOT/scripts/gpu/pack-for-gpu.sh" "$PACK" "$PACK"/bin/*
    # The tests find their fixtures under the source path compiled into them.
    echo "$ROOT" >"$PACK/source-dir"
    du -sh "$PACK"
    ;;
  run)
    OUT=${OUT:-$ROOT/gpu-out}
    mkdir -p "$OUT"
    export LD_LIBRARY_PATH=$PACK/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
    export UCX_MODULE_DIR=$PACK/lib/ucx
    export CONVEYOR_HOME=$PACK  # models/ inside it
    export CONVEYOR_BINARY=$PACK/bin/conveyor
    src=$(cat "$PACK/source-dir")
    if [ "$src" != "$ROOT" ] && [ ! -e "$src" ]; then
      mkdir -p "$(dirname "$src")" && ln -s "$ROOT" "$src"
    fi
    report=$OUT/gpu-check.txt
    status=0
    {
      echo "== nvidia-smi"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
      echo "== conveyor version"; "$PACK/bin/conveyor" version
      for t in "$PACK"/bin/test_*; do
        echo "== $(basename "$t")"
        (cd "$ROOT" && "$t") || status=1
      done
      if [ -f "$PACK/models/SmolLM2-135M-Instruct.Q4_1.gguf" ]; then
        echo "== generate (CPU backend on the GPU machine's cores)"
        "$PACK/bin/conveyor" generate --model smollm2-135m-instruct \
          --prompt "What is the capital of France?" --max-tokens 32 --temperature 0 2>&1
      fi
    } >"$report" 2>&1 || status=1
    tail -n 40 "$report"
    exit "$status"
    ;;
  *)
    echo "usage: $0 pack|run" >&2
    exit 2
    ;;
esac
