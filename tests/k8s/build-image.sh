#!/bin/sh
# Builds Flint's container image without pulling anything: release binaries built here,
# a root filesystem assembled from them and this machine's libraries
# (k8s-manifests/image/assemble-rootfs.sh), then `FROM scratch` with the classic builder.
# The multi-stage Dockerfile at the repository root makes the same image for users with a
# registry.
#
# Usage: tests/k8s/build-image.sh [--no-build] [--tag TAG] [--with-spark SPARK_HOME]
#   --no-build  use the release binaries already in target/release (the container test)
#   --tag TAG   image name (default: flint:<workspace version>, what the manifests run;
#               with --with-spark, flint:<workspace version>-spark<major.minor>)
#   --with-spark SPARK_HOME
#               the worker variant for stock Spark JVM executors: adds this machine's Java
#               runtime (JAVA_HOME, else the one `java` on PATH belongs to) and SPARK_HOME's
#               jars (a Spark distribution, a pyspark package or a virtualenv with pyspark,
#               e.g. .venv-spark35 from tests/spark/setup.sh), with
#               k8s-manifests/image/Dockerfile.scratch-spark
# Prints the image id on the last line.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)
tag=
build=1
spark_home=
while [ "$#" -gt 0 ]; do
  case "$1" in
    --no-build) build=0 ;;
    --tag)
      [ "$#" -ge 2 ] || { echo "--tag needs a value" >&2; exit 2; }
      tag=$2
      shift
      ;;
    --with-spark)
      [ "$#" -ge 2 ] || { echo "--with-spark needs a SPARK_HOME" >&2; exit 2; }
      spark_home=$2
      shift
      ;;
    *) echo "usage: $0 [--no-build] [--tag TAG] [--with-spark SPARK_HOME]" >&2; exit 2 ;;
  esac
  shift
done

target_dir=${CARGO_TARGET_DIR:-$root/target}
if [ "$build" = 1 ]; then
  (cd "$root" && cargo build --release -p flint-master -p flint-worker -p flint-client --bins)
fi

ctx=$(mktemp -d "${TMPDIR:-/tmp}/flint-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
trap 'exit 130' INT TERM
mkdir "$ctx/context"
if [ -z "$spark_home" ]; then
  sh "$root/k8s-manifests/image/assemble-rootfs.sh" "$target_dir/release" "$ctx/context/rootfs" >&2
  cp "$root/k8s-manifests/image/Dockerfile.scratch" "$ctx/context/Dockerfile"
  : "${tag:=flint:$version}"
  set --
else
  sh "$root/k8s-manifests/image/assemble-rootfs.sh" --with-spark "$spark_home" \
    "$target_dir/release" "$ctx/context/rootfs" >&2
  cp "$root/k8s-manifests/image/Dockerfile.scratch-spark" "$ctx/context/Dockerfile"
  # Spark's version from its core jar: spark-core_2.12-3.5.9.jar -> 3.5.9.
  spark_version=
  for jar in "$ctx/context/rootfs/opt/spark/jars"/spark-core_*.jar; do
    spark_version=$(basename "$jar" | sed -n 's/^spark-core_[^-]*-\(.*\)\.jar$/\1/p')
  done
  spark_minor=$(printf '%s\n' "$spark_version" | sed -n 's/^\([0-9]*\.[0-9]*\).*/\1/p')
  [ -n "$spark_minor" ] || { echo "build-image: cannot tell Spark's version from its jars" >&2; exit 1; }
  : "${tag:=flint:$version-spark$spark_minor}"
  set -- --label "org.apache.spark.version=$spark_version"
fi
# The classic builder: no BuildKit/buildx needed, and FROM scratch pulls nothing.
if ! DOCKER_BUILDKIT=0 docker build --quiet --force-rm --tag "$tag" "$@" "$ctx/context" >"$ctx/build.log" 2>&1; then
  cat "$ctx/build.log" >&2
  echo "build-image: docker build failed" >&2
  exit 1
fi
id=$(docker image inspect --format '{{.Id}}' "$tag")
size=$(docker image inspect --format '{{.Size}}' "$tag")
echo "built $tag: $size bytes" >&2
echo "$id"
