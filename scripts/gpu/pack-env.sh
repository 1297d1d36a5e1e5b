# Sourced by the scripts that run the gpu-pack's binaries on the GPU machine
# (scripts/gpu-check.sh pack): ROOT (the checkout), PACK (its gpu-pack), OUT (where
# results go, made here) and the libraries' search paths the pack needs.
# shellcheck shell=bash
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PACK=$ROOT/gpu-pack
OUT=${OUT:-$ROOT/gpu-out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PACK/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export UCX_MODULE_DIR=$PACK/lib/ucx
