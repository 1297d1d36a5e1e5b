#!/usr/bin/env bash
# Sets up (packages, build, default model) and runs the test suites.
# Extra arguments go to ctest, e.g. scripts/test.sh -L unit
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
"$ROOT/scripts/setup.sh"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" "$@"
