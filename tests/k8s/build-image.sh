#!/bin/sh
# Builds Flint's container image without pulling anything: release binaries built here,
# a root filesystem assembled from them and this machine's libraries
# (k8s-manifests/image/assemble-rootfs.sh), then `FROM scratch` with the classic builder.
# The multi-stage Dockerfile at the repository root makes the same image for users with a
# registry.
#
# Usage: tests/k8s/build-image.sh [--no-build] [--tag TAG]
#   --no-build  use the release binaries already in target/release (the container test)
#   --tag TAG   image name (default: flint:<workspace version>, what the manifests run)
# Prints the image id on the last line.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)
tag="flint:$version"
build=1
while [ "$#" -gt 0 ]; do
  case "$1" in
    --no-build) build=0 ;;
    --tag)
      [ "$#" -ge 2 ] || { echo "--tag needs a value" >&2; exit 2; }
      tag=$2
      shift
      ;;
    *) echo "usage: $0 [--no-build] [--tag TAG]" >&2; exit 2 ;;
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
sh "$root/k8s-manifests/image/assemble-rootfs.sh" "$target_dir/release" "$ctx/context/rootfs" >&2
cp "$root/k8s-manifests/image/Dockerfile.scratch" "$ctx/context/Dockerfile"
# The classic builder: no BuildKit/buildx needed, and FROM scratch pulls nothing.
if ! DOCKER_BUILDKIT=0 docker build --quiet --force-rm --tag "$tag" "$ctx/context" >"$ctx/build.log" 2>&1; then
  cat "$ctx/build.log" >&2
  echo "build-image: docker build failed" >&2
  exit 1
fi
id=$(docker image inspect --format '{{.Id}}' "$tag")
size=$(docker image inspect --format '{{.Size}}' "$tag")
echo "built $tag: $size bytes" >&2
echo "$id"
