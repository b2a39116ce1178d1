#!/usr/bin/env bash
# Compiles tests/spark/JavaPi.java against a Spark install's jars into a jar.
# Usage: build-javapi.sh <SPARK_HOME> <out.jar>
set -euo pipefail
spark_home=$1
out=$2
src="$(cd "$(dirname "$0")" && pwd)/JavaPi.java"
classes=$(mktemp -d)
trap 'rm -rf "$classes"' EXIT
javac --release 17 -cp "$spark_home/jars/*" -d "$classes" "$src"
jar cf "$out" -C "$classes" .
