#!/usr/bin/env bash
# Runs image-ops' unit tests built for aarch64 (the Lambda target) under qemu-user, so the arm64
# code runs on an x86_64 machine: the NEON kernel in transcode/huffman.rs, libjpeg-turbo's and
# rav1e's Neon code. Arguments go to `cargo test` after `--lib`: a filter, `-- --nocapture`,
# or an integration test to run as well (`--test transcode` takes the JPEG paths that reach
# into libjpeg's internals, csrc/jpeg_gather.c, through its Neon IDCTs: 2 minutes here).
#
#   scripts/test-arm64.sh [--test NAME] [filter] [-- --nocapture]
#
# Installs nothing. Needs the Rust target (`rustup target add aarch64-unknown-linux-gnu`) and,
# on Debian or Ubuntu, `apt-get install qemu-user gcc-aarch64-linux-gnu g++-aarch64-linux-gnu
# libc6-dev-arm64-cross`: the cross compilers build the C codecs and link, qemu-aarch64 runs the
# test binary against the arm64 C library in /usr/aarch64-linux-gnu. Emulated, so slow, and no
# measure of speed.
set -euo pipefail

for tool in aarch64-linux-gnu-gcc aarch64-linux-gnu-g++ aarch64-linux-gnu-ar qemu-aarch64; do
  if ! command -v "$tool" >/dev/null; then
    echo "$tool not found: see the top of $0" >&2
    exit 1
  fi
done

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
exec cargo test --locked --target aarch64-unknown-linux-gnu -p image-ops --lib "$@"
