#!/usr/bin/env bash
# The embedded default on one machine: installs what is missing, builds Release, starts
# sweepd on var/sweepd.db and one local worker (one job slot per core, up to 4), submits
# sweeps/demo-cpu.yaml, shows its progress, prints the results table, and stops what it
# started (var/sweepd.db stays).
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh --no-test-tools

build_dir=${SWEEPD_BUILD_DIR:-build}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release >/dev/null
# The trainer first: the demo's base model is pre-trained once per cache (about 2 minutes on one
# core; the model is too small to use more), so that runs while the services build.
cmake --build "$build_dir" -j "$(nproc)" --target sweep-train
mkdir -p var
"$build_dir/bin/sweep-train" prepare synthetic:tiny >var/prepare.log 2>&1 &
prepare=$!
trap 'kill "$prepare" 2>/dev/null || true' EXIT
cmake --build "$build_dir" -j "$(nproc)" --target sweepd sweep-worker sweepctl
if ! wait "$prepare"; then
  echo "quickstart: pre-training the demo's base model failed; see var/prepare.log" >&2
  exit 1
fi
trap - EXIT
# One job slot per core, up to the demo's 4 training jobs: its jobs use about one core each.
cores=$(nproc)
SWEEPD_SLOTS=${SWEEPD_SLOTS:-$((cores < 4 ? cores : 4))} SWEEPD_BIN="$build_dir/bin" \
  exec deploy/run-sweep.sh sweeps/demo-cpu.yaml
