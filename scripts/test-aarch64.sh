#!/usr/bin/env bash
# Runs the core's tests (every GEMM kernel, parity, gradient checks, training loop)
# compiled for aarch64 under qemu user-mode emulation, so the NEON micro-kernels are
# tested on an x86-64 machine. Not part of CI: it needs the aarch64 Rust standard
# library (rustup target add) besides Debian's qemu-user and cross gcc.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v qemu-aarch64 >/dev/null || ! command -v aarch64-linux-gnu-gcc >/dev/null; then
  apt-get install -y -qq qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross
fi
rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
# Fail if the NEON kernel was not among those tested.
export FERRONET_TEST_REQUIRE_KERNELS=neon
cargo test --release -p ferronet-core --target aarch64-unknown-linux-gnu --tests "$@"
