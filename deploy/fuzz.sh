#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (the sweep spec parser, the metric-line and the
# final-line readers) with Debian's clang, AddressSanitizer and UBSan into build-fuzz/ (only
# the torch-free libraries they need), and runs each for a bounded time on a seed corpus: the
# specs of sweeps/ and tests/spec/specs/, and the metric lines of the tests. A crash, a hang
# (10 s an input) or a problem without its file, line or field fails the run; the input that
# did it is left in build-fuzz/findings/.
# Usage: deploy/fuzz.sh [SECONDS_PER_TARGET]   (default $SWEEPD_FUZZ_SECONDS, else 60)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-${SWEEPD_FUZZ_SECONDS:-60}}
case "$seconds" in
  '' | *[!0-9]*) echo "fuzz: SECONDS_PER_TARGET must be a whole number of seconds, not '$seconds'" >&2; exit 2 ;;
esac
build_dir=${SWEEPD_FUZZ_BUILD_DIR:-build-fuzz}
if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ not found; run deploy/install-deps.sh (it installs clang)" >&2
  exit 1
fi

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
sanitizers="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_FLAGS="$sanitizers" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DSWEEPD_BUILD_SERVICES=OFF -DSWEEPD_BUILD_TRAINER=OFF -DSWEEPD_BUILD_TESTS=OFF \
  -DSWEEPD_BUILD_FUZZ=ON -DSWEEPD_WERROR=ON >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target spec_fuzz metric_line_fuzz final_line_fuzz

# Seeds, refreshed on every run; what the fuzzer adds to the corpus folders is kept.
corpus=$build_dir/corpus
mkdir -p "$corpus/spec" "$corpus/metric_line" "$corpus/final_line" "$build_dir/findings"
cp sweeps/*.yaml tests/spec/specs/*.yaml tests/agent/data/*.yaml "$corpus/spec/"
python3 - "$corpus" <<'PY'
import hashlib, json, pathlib, sys
corpus = pathlib.Path(sys.argv[1])
fixture = json.loads(pathlib.Path("tests/common/fixtures/metric_lines.json").read_text())
lines = [c["line"] for key in ("valid", "invalid", "final_invalid") for c in fixture[key]]
finals = list(fixture["final_valid"])
lines += [l for l in pathlib.Path("tests/agent/data/bad_metric_lines.txt").read_text().splitlines() if l]
for folder, texts in (("metric_line", lines + finals), ("final_line", finals + lines)):
    for text in texts:
        data = text.encode()
        (corpus / folder / ("seed-" + hashlib.sha1(data).hexdigest())).write_bytes(data)
PY

status=0
for target in spec metric_line final_line; do
  echo "fuzz: ${target}_fuzz for ${seconds} s"
  if ! "$build_dir/bin/${target}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -max_len=65536 -print_final_stats=1 -artifact_prefix="$build_dir/findings/${target}-" \
      "$corpus/$target" >"$build_dir/${target}.log" 2>&1; then
    echo "fuzz: ${target}_fuzz found a problem; its input is in $build_dir/findings/, the log:" >&2
    tail -n 40 "$build_dir/${target}.log" >&2
    status=1
  else
    grep -E "^stat::number_of_executed_units|^Done" "$build_dir/${target}.log" | sed "s/^/fuzz: ${target}: /" || true
  fi
done
exit "$status"
