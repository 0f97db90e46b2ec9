#!/usr/bin/env bash
# Installs the pinned Python tools the tests use into a venv under the Cargo target dir:
#   schemathesis (property-based tests of docs/openapi.yaml against the local HTTP API).
# Prints the venv's bin directory; tests find `st` there (or via IMGFN_SCHEMATHESIS / PATH).
# Idempotent: a venv that already has the pinned versions is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
venv="$target/py-tools"
SCHEMATHESIS_VERSION=4.32.5
if [ ! -x "$venv/bin/st" ] || ! "$venv/bin/python" -m pip show schemathesis 2>/dev/null | grep -qx "Version: $SCHEMATHESIS_VERSION"; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2
fi
echo "$(cd "$venv/bin" && pwd)"
