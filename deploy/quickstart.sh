#!/usr/bin/env bash
# The embedded default on one machine: installs what is missing, builds Release, starts
# sweepd on var/sweepd.db and one local worker, submits sweeps/demo-cpu.yaml, shows its
# progress, prints the results table, and stops what it started (var/sweepd.db stays).
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh --no-test-tools

build_dir=${SWEEPD_BUILD_DIR:-build}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target sweepd sweep-worker sweepctl sweep-train
SWEEPD_BIN="$build_dir/bin" exec deploy/run-sweep.sh sweeps/demo-cpu.yaml
