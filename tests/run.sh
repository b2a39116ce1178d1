#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit, property and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi

# The browser test (tests/tests/browser.rs) drives headless Chromium from Debian's packages;
# it fails, rather than skips, when the browser is missing.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "==> installing Chromium for the browser test"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium chromium-driver
fi

# The Spark compatibility tests (tests/tests/spark_compat.rs) run stock Spark 3.5 and 4.0
# drivers, executors and cluster-mode drivers: pyspark 3.5.x and 4.0.x in .venv-spark35 and
# .venv-spark40, and a Java 17 JDK (javac compiles the Java Pi job). They fail, rather than
# skip, when any of it is missing.
if ! command -v java >/dev/null 2>&1 || ! command -v javac >/dev/null 2>&1 || ! command -v jar >/dev/null 2>&1; then
  echo "==> installing a Java 17 JDK for the Spark compatibility tests"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y openjdk-17-jdk-headless
fi
echo "==> Spark 3.5 and 4.0 for the Spark compatibility tests"
bash tests/spark/setup.sh

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> Kubernetes packaging: schemas, yamllint, shellcheck, hadolint, semantic checks"
bash tests/k8s/validate.sh
echo "==> build (binaries used by the end-to-end tests)"
cargo build --workspace --bins
echo "==> release binaries for the container image (tests/tests/k8s_containers.rs)"
cargo build --release -p flint-master -p flint-worker -p flint-client --bins
echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> cargo test"
# End-to-end tests start real processes; two at a time suits a 2-core machine.
cargo test --workspace -- --test-threads=2
