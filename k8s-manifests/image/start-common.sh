#!/bin/sh
# Sourced by /start-master and /start-worker (the classic recipe's start-common.sh).
#
# A Service named spark-master makes Kubernetes inject SPARK_MASTER_PORT=tcp://10.0.0.1:7077
# into every pod of the namespace (and a Service named spark-worker would do the same to
# SPARK_WORKER_PORT). Those are addresses, not port numbers: the manifests turn service
# links off (enableServiceLinks: false) and Flint ignores such values with a warning, but
# the recipe's unset stays so they never reach the binaries. A plain port number set on
# purpose is kept.
case "${SPARK_MASTER_PORT:-}" in
  *://*) unset SPARK_MASTER_PORT ;;
esac
case "${SPARK_WORKER_PORT:-}" in
  *://*) unset SPARK_WORKER_PORT ;;
esac

PATH=/opt/flint/bin:/usr/bin:/bin
# The worker variant (image/Dockerfile.scratch-spark) has a Java runtime: keep `java` on the
# PATH of the executors and drivers the worker starts.
if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
  PATH=/opt/flint/bin:$JAVA_HOME/bin:/usr/bin:/bin
fi
export PATH
