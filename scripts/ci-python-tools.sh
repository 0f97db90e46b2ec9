#!/usr/bin/env bash
# Installs the pinned Python tools the tests use into a venv under the Cargo target dir:
#   schemathesis (property-based tests of docs/openapi.yaml against the local HTTP API) and
#   the AWS CLI (the README's local examples, run by shared/local/tests/local_stack.rs).
# Prints the venv's bin directory; tests find `st` and `aws` there (or via IMGFN_SCHEMATHESIS,
# IMGFN_AWS_CLI, PATH). Idempotent: a venv that already has the pinned versions is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
venv="$target/py-tools"
pins="schemathesis==4.32.5 awscli==1.46.2"
if [ "$(cat "$venv/.pins" 2>/dev/null || true)" != "$pins" ] || [ ! -x "$venv/bin/st" ] || [ ! -x "$venv/bin/aws" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $pins >&2
  echo "$pins" >"$venv/.pins"
fi
echo "$(cd "$venv/bin" && pwd)"
