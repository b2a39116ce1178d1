#!/usr/bin/env bash
# Offline validation of the Kubernetes packaging: schemas (kubernetes-validate --strict
# for Kubernetes 1.25, 1.30 and 1.37; any WARN fails), yamllint, shellcheck on the start
# scripts, hadolint on the Dockerfiles, and the semantic checks of check_manifests.py
# (with its own tests). The kustomize components (k8s-manifests/components/) are rendered
# onto the manifests with `kubectl kustomize` and schema-checked too, when kubectl is
# installed (it needs no cluster for that). The Python tools go into .venv-k8s/ (created
# on first use).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
venv=$root/.venv-k8s
manifests=k8s-manifests

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/k8s/requirements.txt
bin=$venv/bin

# kubernetes-validate exits 0 on an unknown kind (it only prints WARN), so any line that
# is not INFO fails.
schema_check() {
  local out rc=0
  out=$("$bin/kubernetes-validate" --strict -k 1.25 -k 1.30 -k 1.37 "$@" 2>&1) || rc=$?
  printf '%s\n' "$out"
  if [ "$rc" -ne 0 ] || printf '%s\n' "$out" | grep -qv '^INFO '; then
    return 1
  fi
}

# The resources kustomization.yaml applies (kubernetes-validate has no Kustomization schema).
mapfile -t resources < <("$bin/python" -c '
import sys, yaml
for r in yaml.safe_load(open(sys.argv[1]))["resources"]:
    print(r)
' "$manifests/kustomization.yaml")
[ "${#resources[@]}" -gt 0 ] || { echo "no resources in kustomization.yaml" >&2; exit 1; }

echo "--> kubernetes-validate --strict (1.25, 1.30, 1.37)"
schema_check "${resources[@]/#/$manifests/}"
# ... and the check itself fails on a misspelled kind, which is only a WARN.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed 's/^kind: ReplicationController$/kind: ReplicationControler/' \
  "$manifests/spark-worker-controller.yaml" >"$tmp/misspelled.yaml"
if schema_check "$tmp/misspelled.yaml" >/dev/null; then
  echo "schema_check accepted an unknown kind" >&2
  exit 1
fi

# Each component, applied to the manifests as an operator's overlay would (kustomize refuses
# an overlay inside its base's directory, so the overlay is written to a temporary one).
if command -v kubectl >/dev/null 2>&1; then
  for component in "$manifests"/components/*/; do
    [ -f "$component/kustomization.yaml" ] || continue
    name=$(basename "$component")
    overlay=$tmp/overlay-$name
    mkdir -p "$overlay"
    rel=$("$bin/python" -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$root/$manifests" "$overlay")
    printf -- '---\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %s\ncomponents:\n  - %s\n' \
      "$rel" "$rel/components/$name" >"$overlay/kustomization.yaml"
    echo "--> kubectl kustomize with components/$name, then kubernetes-validate --strict"
    kubectl kustomize "$overlay" >"$tmp/$name.yaml"
    schema_check "$tmp/$name.yaml"
  done
else
  echo "--> kubectl is not installed: components/ are checked by check_manifests.py only"
fi

echo "--> yamllint"
"$bin/yamllint" --strict -c "$manifests/.yamllint" "$manifests"

echo "--> shellcheck"
"$bin/shellcheck" -x -P SCRIPTDIR -s sh \
  "$manifests/image/start-common.sh" "$manifests/image/start-master" "$manifests/image/start-worker" \
  "$manifests/image/assemble-rootfs.sh" tests/k8s/build-image.sh
"$bin/shellcheck" -s bash tests/k8s/validate.sh

echo "--> hadolint"
"$bin/hadolint" Dockerfile "$manifests/image/Dockerfile.scratch" "$manifests/image/Dockerfile.scratch-spark"

echo "--> semantic checks"
"$bin/python" tests/k8s/check_manifests.py
"$bin/python" -m unittest discover -s tests/k8s -p 'test_*.py'
