#!/usr/bin/env bash
# CI: deploy checks. `lint` lints template.yaml with cfn-lint and `sam validate --lint` (neither
# needs AWS credentials); `build` builds every function's Lambda artifact the way `sam build`
# does (`cargo lambda build --release --arm64`, the rust-cargolambda build method) and checks
# that each bootstrap is an ELF executable for that architecture; `all` (the default) does both.
#
# arm64 needs the aarch64 standard library, which rustup downloads from static.rust-lang.org.
# Where that cannot be reached (CI reaches only the package registries), the build falls back
# to x86_64 with a NOTE: the same code, profile and cargo-lambda path, for the other
# architecture. IMGFN_CI_ARCH=arm64|x86_64 forces one.
#
# Tools are pinned and installed with pip into a virtualenv under the cargo target directory
# (reused when the versions match). The build uses the workspace's release profile unchanged
# (fat LTO, one codegen unit): the artifacts are the ones `sam build` would deploy. Measured
# times are in docs/deploy.md. Needs python3 (with venv), rustup and network access to PyPI
# and static.rust-lang.org (the aarch64 standard library) on the first run.
#
# Environment:
#   CARGO_TARGET_DIR     where the venv and the artifacts go (default: target)
#   IMGFN_CI_ARCH        arm64 or x86_64 (default: arm64, x86_64 when arm64 cannot be had)
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-all}"
case "$mode" in lint | build | all) ;; *) echo "usage: $0 [lint|build|all]" >&2; exit 2 ;; esac

CFN_LINT_VERSION=1.58.0
SAM_CLI_VERSION=1.170.0
CARGO_LAMBDA_VERSION=1.9.2

target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target"
venv="$(cd "$target" && pwd)/ci-deploy-venv"
pins="cfn-lint==$CFN_LINT_VERSION aws-sam-cli==$SAM_CLI_VERSION cargo-lambda==$CARGO_LAMBDA_VERSION"

step() { echo "== $* ($(date -u +%H:%M:%S))"; }

step "tools: $pins"
if [ "$(cat "$venv/.pins" 2>/dev/null || true)" != "$pins" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $pins
  echo "$pins" >"$venv/.pins"
fi
export PATH="$venv/bin:$PATH"
# Neither tool may phone home from CI, and sam needs a region only to resolve pseudo params.
export SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

if [ "$mode" != build ]; then
  step "cfn-lint template.yaml"
  cfn-lint template.yaml
  step "sam validate --lint"
  sam validate --lint -t template.yaml
fi
if [ "$mode" = lint ]; then
  exit 0
fi

arch="${IMGFN_CI_ARCH:-}"
if [ -z "$arch" ]; then
  arch=arm64
  if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    step "rustup target add aarch64-unknown-linux-gnu"
    if ! timeout 300 rustup target add aarch64-unknown-linux-gnu; then
      arch=x86_64
      echo "NOTE: the aarch64 standard library could not be downloaded (rustup needs"
      echo "NOTE: static.rust-lang.org); building the x86_64 artifacts instead. template.yaml"
      echo "NOTE: deploys arm64, which sam build produces on a machine with that target."
    fi
  fi
fi
case "$arch" in
  arm64) arch_flag=--arm64 elf_machine=b700 triple=aarch64-unknown-linux-gnu simd=neon ;;   # e_machine EM_AARCH64
  x86_64) arch_flag=--x86-64 elf_machine=3e00 triple=x86_64-unknown-linux-gnu simd=avx2 ;; # e_machine EM_X86_64
  *) echo "IMGFN_CI_ARCH must be arm64 or x86_64, not $arch" >&2; exit 2 ;;
esac

# The binaries the template deploys that this workspace builds. A Binary without a crate is
# reported, not built: `cargo test -p stack-check` is the gate that keeps the two in step.
mapfile -t bins < <(cargo metadata --format-version 1 --no-deps --locked |
  python3 -c '
import json, re, sys
workspace = {t["name"] for p in json.load(sys.stdin)["packages"] for t in p["targets"] if "bin" in t["kind"]}
template = re.findall(r"^\s+Binary:\s*(\S+)\s*$", open("template.yaml").read(), re.M)
for b in template:
    if b in workspace:
        print(b)
    else:
        print(f"note: template.yaml deploys {b}, which is not a binary of this workspace (yet)", file=sys.stderr)
')
if [ ${#bins[@]} -eq 0 ]; then
  echo "no function binaries found in template.yaml" >&2
  exit 1
fi

args=(--release "$arch_flag" --locked)
for b in "${bins[@]}"; do args+=(--bin "$b"); done
step "cargo lambda build ${args[*]}"
start=$(date +%s)
cargo lambda build "${args[@]}"
echo "artifacts built in $(($(date +%s) - start)) s"

step "check artifacts"
for b in "${bins[@]}"; do
  f="$target/lambda/$b/bootstrap"
  [ -x "$f" ] || { echo "missing $f" >&2; exit 1; }
  # ELF magic, then e_machine (bytes 18-19, little-endian).
  magic=$(od -A n -t x1 -N 4 "$f" | tr -d ' \n')
  machine=$(od -A n -t x1 -j 18 -N 2 "$f" | tr -d ' \n')
  if [ "$magic" != 7f454c46 ] || [ "$machine" != "$elf_machine" ]; then
    echo "$f is not an $arch ELF executable (magic $magic, machine $machine)" >&2
    exit 1
  fi
  echo "$b: $(du -h "$f" | cut -f1) $arch"
done

# The artifacts are stripped, so the SIMD code is checked in the static libraries they were
# linked from: libjpeg-turbo (mozjpeg-sys) must hold its Neon (arm64) or AVX2 (x86_64) IDCT,
# colour conversion and Huffman encoder, and rav1e its Neon/AVX2 assembly. mozjpeg-sys builds
# plain C without a word when it cannot assemble them (JPEG tasks ~1.5x slower).
step "check SIMD code ($simd) in the linked codecs"
build_dir="$target/$triple/release/build"
# The newest build of each (a target directory may hold older ones).
newest_out() { ls -td "$build_dir"/$1-*/out 2>/dev/null | head -n 1; }
jpeg_out=$(newest_out mozjpeg-sys)
rav1e_out=$(newest_out rav1e)
[ -n "$jpeg_out" ] && [ -n "$rav1e_out" ] || { echo "no mozjpeg-sys or rav1e build under $build_dir" >&2; exit 1; }
functions() { nm --defined-only "$1"/*.a 2>/dev/null | awk '$2 ~ /^[Tt]$/ {print $3}'; }
if [ "$simd" = neon ]; then huff=neon; else huff=sse2; fi # libjpeg-turbo's x86 Huffman encoder is SSE2
for sym in jsimd_idct_islow_$simd jsimd_extrgb_ycc_convert_$simd jsimd_huff_encode_one_block_$huff; do
  functions "$jpeg_out" | grep -qx "$sym" ||
    { echo "$jpeg_out lacks $sym: libjpeg-turbo was built without its SIMD code" >&2; exit 1; }
done
jpeg_n=$(functions "$jpeg_out" | grep -c "^jsimd_.*_$simd\$" || true)
rav1e_n=$(functions "$rav1e_out" | grep -c "_$simd\$" || true)
[ "$rav1e_n" -gt 0 ] || { echo "$rav1e_out holds no *_$simd functions: rav1e was built without its assembly" >&2; exit 1; }
echo "libjpeg-turbo: $jpeg_n jsimd_*_$simd functions; rav1e: $rav1e_n *_$simd functions"
