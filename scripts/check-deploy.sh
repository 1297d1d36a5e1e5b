#!/usr/bin/env bash
# Checks the deployment files: every kustomization under deploy/k8s renders
# (`kubectl kustomize`), the rendered objects have what the cluster needs (probes on the
# metrics port, the startup budget for a model load, the SIGTERM drain, GPU limits, the
# StatefulSet and its headless Service, the ServiceMonitor, key Secrets, volumes, non-root),
# every `conveyor` flag in them is one the binary accepts, the base's copies of
# config/cluster.yaml and scripts/install-model.sh are current, and the Dockerfile is a
# multi-stage, non-root build with pinned base images. tests/deploy/check_manifests.py does
# the checking, and in a self-test breaks copies of the manifests to see each fault reported.
#
#   scripts/check-deploy.sh             (CONVEYOR_BINARY=path: the binary for the flag check;
#                                        default build/bin/conveyor, skipped when absent)
# Needs kubectl (Debian: kubernetes-client) or kustomize, and python3 with PyYAML.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

fail() { printf 'check-deploy: FAIL %s\n' "$*" >&2; exit 1; }

if command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
  render() { kubectl kustomize "$1"; }
elif command -v kustomize >/dev/null; then
  render() { kustomize build "$1"; }
else
  fail "neither kubectl (with kustomize) nor kustomize is installed (scripts/setup.sh installs kubernetes-client)"
fi

PYTHON=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import yaml' 2>/dev/null; then PYTHON=$p; break; fi
done
[ -n "$PYTHON" ] || fail "no python3 with PyYAML (Debian: python3-yaml)"

BINARY=${CONVEYOR_BINARY:-$ROOT/build/bin/conveyor}
if [ -x "$BINARY" ]; then
  binary_arg=(--binary "$BINARY")
else
  echo "check-deploy: no conveyor binary at $BINARY: flag check skipped"
  binary_arg=()
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for dir in deploy/k8s/overlays/single-gpu deploy/k8s/overlays/multi-node \
  deploy/k8s/overlays/cpu-demo deploy/k8s/examples/submit-job; do
  # kustomize 5 warns about the kustomize-2 fields (bases, patchesStrategicMerge); only
  # its other messages are shown.
  if ! render "$dir" >"$out/$(basename "$dir").yaml" 2>"$out/stderr"; then
    cat "$out/stderr" >&2
    fail "kubectl kustomize $dir"
  fi
  grep -v "is deprecated. Please use" "$out/stderr" >&2 || true
done

"$PYTHON" tests/deploy/check_manifests.py --root "$ROOT" --rendered "$out" --self-test \
  "${binary_arg[@]}" || fail "deploy/k8s or the Dockerfile (above)"

if command -v docker >/dev/null && docker info >/dev/null 2>&1 && [ "${CHECK_DEPLOY_DOCKER:-0}" = 1 ]; then
  docker build -t conveyor:check . || fail "docker build"
  docker run --rm conveyor:check --help >/dev/null || fail "the image does not run conveyor"
fi
echo "deploy ok"
