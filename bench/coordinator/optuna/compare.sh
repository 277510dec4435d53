#!/usr/bin/env bash
# sweepd against Optuna in one run (docs/benchmarks.md): Optuna 3.1 (Debian's python3-optuna)
# with its SQLite storage, W worker processes, GridSampler, R trial.report calls per trial;
# then coordinator_bench with W simulated workers and R metric points per job. Prints both
# rates and their ratio. Usage (from the repository root, after building coordinator_bench):
#   bench/coordinator/optuna/compare.sh [BUILD_DIR] [OPTUNA_TRIALS] [SWEEPD_JOBS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
trials=${2:-1000}
jobs=${3:-10000}
workers=10
reports=20
[ -x "$build/bin/coordinator_bench" ] || {
  echo "compare: $build/bin/coordinator_bench is missing; build the coordinator_bench target" >&2
  exit 2
}
/usr/bin/python3 -c 'import optuna' 2>/dev/null || {
  echo "compare: python3-optuna is missing: apt-get install python3-optuna" >&2
  exit 2
}
echo "load: $(uptime)"
optuna=$(/usr/bin/python3 "$here/optuna_bench.py" --trials "$trials" --workers "$workers" --reports "$reports")
echo "optuna: $optuna"
table=$("$build/bin/coordinator_bench" --workers "$workers" --jobs "$jobs" --points "$reports")
echo "$table"
echo "load: $(uptime)"
optuna_rate=$(echo "$optuna" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["trials_per_s"])')
# The data row of coordinator_bench's table: column 7 is leases (finished jobs) per second.
sweepd_rate=$(echo "$table" | awk -F'|' 'NR == 3 {gsub(/ /, "", $7); print $7}')
/usr/bin/python3 -c "print(f'sweepd {float($sweepd_rate):.1f} jobs/s, optuna {float($optuna_rate):.2f} trials/s: {float($sweepd_rate) / float($optuna_rate):.0f}x')"
