#!/usr/bin/env bash
# Installs a stock Spark 3.5 (the pyspark 3.5.x wheel, which bundles Spark's jars and
# bin/spark-submit) into the project-local virtualenv .venv-spark35, for
# tests/tests/spark_compat.rs. Needs python3 (with venv) and a Java 17 runtime on PATH.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venv-spark35
if [ -x "$VENV/bin/spark-submit" ]; then
  echo "$VENV already has pyspark: $("$VENV/bin/python" -c 'import pyspark; print(pyspark.__version__)')"
  exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet 'pyspark==3.5.*'
echo "installed pyspark $("$VENV/bin/python" -c 'import pyspark; print(pyspark.__version__)') into $VENV"
