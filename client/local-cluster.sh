#!/usr/bin/env bash
# Builds Flint, starts a local master and two workers, runs the pi example in cluster
# mode, prints the result and where the web UI is, and stops everything on Ctrl-C.
#
#   bash client/local-cluster.sh [slices]        (default 100)
#
# Ports: FLINT_MASTER_PORT (7077), FLINT_UI_PORT (8080); workers' UIs on 8081 and 8082.
set -euo pipefail
cd "$(dirname "$0")/.."

slices="${1:-100}"
port="${FLINT_MASTER_PORT:-7077}"
ui="${FLINT_UI_PORT:-8080}"
master="spark://127.0.0.1:${port}"

echo "==> building (release)"
cargo build --release --quiet -p flint-master -p flint-worker -p flint-client
bin="$PWD/target/release"

run="$(mktemp -d -t flint-local-XXXXXX)"
pids=()
cleanup() {
  echo
  echo "==> stopping the cluster"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "logs are in $run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for_line() { # file pattern
  for _ in $(seq 1 200); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "timed out waiting for '$2' in $1" >&2
  cat "$1" >&2
  return 1
}

echo "==> starting master $master (web UI on port $ui)"
"$bin/flint-master" --host 127.0.0.1 --port "$port" --webui-port "$ui" >"$run/master.log" 2>&1 &
pids+=($!)
wait_for_line "$run/master.log" "Starting Flint master"

for i in 1 2; do
  "$bin/flint-worker" "$master" --host 127.0.0.1 --cores 2 --memory 2g \
    --work-dir "$run/work-$i" --webui-port $((8080 + i)) >"$run/worker-$i.log" 2>&1 &
  pids+=($!)
done
for i in 1 2; do wait_for_line "$run/worker-$i.log" "Successfully registered"; done
echo "==> 2 workers registered"

echo "==> flint-submit --master $master --deploy-mode cluster --wait pi $slices"
"$bin/flint-submit" --master "$master" --deploy-mode cluster --executor-cores 1 --wait "$bin/pi" "$slices"

echo
echo "Web UI:  http://127.0.0.1:${ui}   (workers: http://127.0.0.1:8081, http://127.0.0.1:8082)"
echo "Submit more: $bin/flint-submit --master $master --deploy-mode cluster --wait $bin/pi 1000"
echo "Press Ctrl-C to stop the cluster."
while true; do sleep 3600; done
