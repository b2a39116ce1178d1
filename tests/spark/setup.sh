#!/usr/bin/env bash
# Installs stock Spark 3.5 and 4.0 (the pyspark 3.5.x and 4.0.x wheels, which bundle Spark's
# jars and bin/spark-submit) into the project-local virtualenvs .venv-spark35 and
# .venv-spark40, for tests/tests/spark_compat.rs and the Spark benchmark. Needs python3 (with
# venv) and a Java 17 runtime on PATH. Already-installed venvs are kept (CI caches them).
set -euo pipefail
cd "$(dirname "$0")/../.."
install() {
  local venv=$1 spec=$2
  if [ -x "$venv/bin/spark-submit" ] && "$venv/bin/python" -c 'import pyspark' 2>/dev/null; then
    echo "$venv already has pyspark $("$venv/bin/python" -c 'import pyspark; print(pyspark.__version__)')"
    return
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$spec"
  echo "installed pyspark $("$venv/bin/python" -c 'import pyspark; print(pyspark.__version__)') into $venv"
}
install .venv-spark35 'pyspark==3.5.*'
install .venv-spark40 'pyspark==4.0.*'
