#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit, property and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> build (binaries used by the end-to-end tests)"
cargo build --workspace --bins
echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> cargo test"
# End-to-end tests start real processes; two at a time suits a 2-core machine.
cargo test --workspace -- --test-threads=2
