#!/usr/bin/env bash
# Runs one sweep on this machine from start to end: sweepd on a SQLite file, N local workers,
# `sweepctl submit`, `sweepctl watch` until the sweep is done, then stops what it started and
# prints the results table read from the database file (which stays). deploy/quickstart.sh
# runs the demo with it; on a GPU node it runs a bundle (deploy/bundle.sh) with a trainer built
# there (deploy/build-trainer.sh).
#
# Usage: deploy/run-sweep.sh SPEC [WORKERS]        (WORKERS: local workers, default 1)
# Environment:
#   SWEEPD_BIN     folder holding sweepd, sweep-worker and sweepctl (default build/bin; a
#                  bundle's bin/ works as is)
#   SWEEP_TRAIN    the trainer (default: sweep-train beside sweep-worker)
#   SWEEPD_VAR     state folder: the database, logs, the workers' job folders (default var)
#   SWEEPD_EXPORT  a folder: also write the table as results.md, results.csv and results.tex
#   SWEEPD_SLOTS   job slots per worker (sweep-worker --slots; default: one per GPU, else 1)
#   SWEEPD_RETRY=1 when the sweep is already in the database: run its failed jobs again
#                  (`sweepctl retry`) before watching
set -euo pipefail
cd "$(dirname "$0")/.."

spec=${1:?usage: deploy/run-sweep.sh SPEC [WORKERS]}
workers=${2:-1}
[[ $workers =~ ^[1-9][0-9]*$ ]] || { echo "run-sweep: WORKERS must be a positive integer, not '$workers'" >&2; exit 2; }
bin=${SWEEPD_BIN:-build/bin}
var=${SWEEPD_VAR:-var}
for b in sweepd sweep-worker sweepctl; do
  [ -x "$bin/$b" ] || { echo "run-sweep: $bin/$b not found (build it, or set SWEEPD_BIN)" >&2; exit 2; }
done
worker_args=()
[ -n "${SWEEP_TRAIN:-}" ] && worker_args+=(--trainer "$(realpath "$SWEEP_TRAIN")")
[ -n "${SWEEPD_SLOTS:-}" ] && worker_args+=(--slots "$SWEEPD_SLOTS")
# The sweep's name, from the spec as sweepd will read it (also checks the spec before anything starts).
name=$("$bin/sweepctl" validate "$spec" | sed -n "s/.*sweep '\([a-z0-9-]*\)'.*/\1/p")
[ -n "$name" ] || { echo "run-sweep: could not read the sweep's name from $spec" >&2; exit 2; }

mkdir -p "$var"
rm -f "$var/sweepd.addr"
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT

"$bin/sweepd" --db "$var/sweepd.db" --listen 127.0.0.1:0 --port-file "$var/sweepd.addr" \
  >>"$var/sweepd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$var/sweepd.addr" ] && break; sleep 0.1; done
[ -s "$var/sweepd.addr" ] || { echo "run-sweep: sweepd did not start; see $var/sweepd.log" >&2; exit 1; }
export SWEEPD_ADDR=$(cat "$var/sweepd.addr")
echo "run-sweep: sweepd listening on $SWEEPD_ADDR (database $var/sweepd.db, log $var/sweepd.log)"

for i in $(seq "$workers"); do
  suffix=""
  [ "$workers" -gt 1 ] && suffix="-$i"
  "$bin/sweep-worker" --coordinator "$SWEEPD_ADDR" --workdir "$var/worker$suffix" "${worker_args[@]}" \
    --hostname "$(hostname)$suffix" >>"$var/worker$suffix.log" 2>&1 &
  pids+=($!)
done
echo "run-sweep: $workers local worker(s) started (log $var/worker*.log)"

"$bin/sweepctl" submit "$spec"
[ "${SWEEPD_RETRY:-}" = 1 ] && "$bin/sweepctl" retry "$name"
# watch exits 6 when some job failed for good: the table is still printed, and that status returned.
status=0
"$bin/sweepctl" watch "$name" || status=$?

stop_all
trap - EXIT
if [ -n "${SWEEPD_EXPORT:-}" ]; then
  mkdir -p "$SWEEPD_EXPORT"
  for format in md:md csv:csv latex:tex; do
    "$bin/sweepctl" --db "$var/sweepd.db" export "$name" --format "${format%%:*}" \
      >"$SWEEPD_EXPORT/results.${format##*:}"
  done
fi
echo
"$bin/sweepctl" --db "$var/sweepd.db" results "$name"
exit "$status"
