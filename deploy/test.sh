#!/usr/bin/env bash
# Installs what is missing, builds everything (Release, warnings as errors) and runs the
# whole test suite with CTest. Usage: deploy/test.sh [extra ctest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh

build_dir=${SWEEPD_BUILD_DIR:-build}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DSWEEPD_WERROR=ON \
  -DSWEEPD_BUILD_TESTS=ON
cmake --build "$build_dir" -j "$(nproc)"
ctest --test-dir "$build_dir" --output-on-failure --timeout 900 -j 2 "$@"
deploy/fuzz.sh "${SWEEPD_FUZZ_SECONDS:-15}"  # libFuzzer on the spec and metric-line readers (docs/metrics.md)
