#!/usr/bin/env bash
# The embedded default on one machine: installs what is missing, builds Release, starts
# sweepd on var/sweepd.db and one local worker, submits sweeps/demo-cpu.yaml, shows its
# progress, prints the results table, and stops what it started (var/sweepd.db stays).
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh

build_dir=${SWEEPD_BUILD_DIR:-build}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target sweepd sweep-worker sweepctl sweep-train
bin="$build_dir/bin"

mkdir -p var
rm -f var/sweepd.addr
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT

"$bin/sweepd" --db var/sweepd.db --listen 127.0.0.1:0 --port-file var/sweepd.addr \
  >>var/sweepd.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s var/sweepd.addr ] && break; sleep 0.1; done
[ -s var/sweepd.addr ] || { echo "quickstart: sweepd did not start; see var/sweepd.log" >&2; exit 1; }
export SWEEPD_ADDR=$(cat var/sweepd.addr)
echo "quickstart: sweepd listening on $SWEEPD_ADDR (database var/sweepd.db, log var/sweepd.log)"

"$bin/sweep-worker" --coordinator "$SWEEPD_ADDR" --workdir var/worker >>var/worker.log 2>&1 &
pids+=($!)
echo "quickstart: one local worker started (log var/worker.log)"

"$bin/sweepctl" submit sweeps/demo-cpu.yaml
"$bin/sweepctl" watch demo

stop_all
trap - EXIT
echo
"$bin/sweepctl" --db var/sweepd.db results demo
