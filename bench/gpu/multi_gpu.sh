#!/usr/bin/env bash
# Issue 20 on a node with G >= 2 GPUs, in one call: (1) the rank check (bench/gpu/ranks_check.sh:
# the same CUDA job on 1 and G devices, NCCL, step losses within 1e-3 relative); (2) scaling:
# Llama-2-7B-shaped LoRA on track B (random bf16 weights made by bench/gpu/make_7b_inputs.py,
# tokens_per_update 32768, the global batch, split over the ranks) through `sweep-train run` with
# devices 1 and G, tokens/s of the last step line, scaling efficiency =
# tokens/s(G) / (G x tokens/s(1)) (goal >= 90% at G = 2); (3) a sweep of 4 jobs through sweepd and
# one sweep-worker (one slot per GPU: the demo spec on CUDA, deploy/run-sweep.sh with one worker),
# which must run G at a time, one per slot: the attempts' slots and the most running at once
# are read from the database.
#
# Usage: bench/gpu/multi_gpu.sh [OUT_DIR]   SWEEP_TRAIN, SWEEPD_BIN (a bundle's bin/), G (2), STEPS (12)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(realpath -m "${1:-bench/gpu/out-multi}")
mkdir -p "$out"
g=${G:-2}
steps=${STEPS:-12}
export NCCL_NVLS_ENABLE=0
SWEEP_TRAIN=$(realpath "${SWEEP_TRAIN:?set SWEEP_TRAIN to a built sweep-train}")
have=$(nvidia-smi -L | wc -l)
[ "$have" -ge "$g" ] || { echo "multi_gpu: needs $g GPUs, this node has $have" >&2; exit 2; }

G=$g SWEEP_TRAIN=$SWEEP_TRAIN bench/gpu/ranks_check.sh "$out/ranks" | tee "$out/ranks.md"

root=/tmp/sweepd-multi
tar xzf .gpu-deps/tokenizer-bench.tar.gz -C /tmp tokenizers/llama2 2>/dev/null || true
python3 bench/gpu/make_7b_inputs.py --shape bench/gpu/llama-2-7b.json --tokenizer /tmp/tokenizers/llama2 --root "$root" >"$out/make.log" 2>&1
for devices in 1 "$g"; do
  work=$out/scale-d$devices
  rm -rf "$work" && mkdir -p "$work"
  cat >"$work/job.json" <<JOB
{"job_id": "scaling", "kind": "train", "devices": $devices,
 "model": {"source": "$root/model", "dtype": "bfloat16"},
 "track": {"name": "B"}, "adapter": {"method": "lora", "r": 16, "alpha": 32},
 "train": {"data": "$root/data/alpaca.jsonl", "steps": $steps, "lr": 2e-4, "seq_len": 1024,
           "tokens_per_update": 32768, "micro_batch": 4, "log_every": 1, "checkpoint_every": 0},
 "eval": [], "seed": 0, "device": "cuda"}
JOB
  "$SWEEP_TRAIN" run --job "$work/job.json" --workdir "$work/run" >"$work/run.jsonl" 2>"$work/run.err" ||
    { echo "scaling devices=$devices failed: $(tail -2 "$work/run.err")"; exit 1; }
done
python3 - "$out" "$g" <<'PY' | tee "$out/scaling.md"
import json, sys
out, g = sys.argv[1], int(sys.argv[2])
def rate(d):
    steps = [json.loads(l) for l in open(f"{out}/scale-d{d}/run.jsonl") if '"type":"step"' in l]
    return steps[-1]["tokens_per_s"]
one, many = rate(1), rate(g)
eff = many / (g * one)
print(f"| GPUs | tokens/s | scaling efficiency |\n| ---: | ---: | ---: |\n| 1 | {one:,.0f} | — |\n| {g} | {many:,.0f} | {eff:.1%} ({'met' if eff >= 0.9 else 'NOT met'}: goal 90%) |")
PY

sed -e 's/resources: {device: cpu}/resources: {device: cuda}/' sweeps/demo-cpu.yaml >"$out/demo-cuda.yaml"
rm -rf "$out/var"
SWEEPD_VAR=$out/var SWEEPD_EXPORT=$out/demo deploy/run-sweep.sh "$out/demo-cuda.yaml" 1 >"$out/run-sweep.log" 2>&1
python3 - "$out/var/sweepd.db" "$g" <<'PY' | tee "$out/sweep.md"
import sqlite3, sys
db, g = sqlite3.connect(sys.argv[1]), int(sys.argv[2])
rows = db.execute("SELECT a.job_id, j.kind, a.slot_index, a.started_ms, a.finished_ms, a.outcome FROM attempts a "
                  "JOIN jobs j ON j.job_id = a.job_id WHERE a.started_ms IS NOT NULL ORDER BY a.started_ms").fetchall()
events = sorted([(r[3], 1) for r in rows] + [(r[4], -1) for r in rows if r[4]])
most = running = 0
for _, d in events:
    running += d
    most = max(most, running)
print("| job | kind | slot | seconds | outcome |\n| --- | --- | ---: | ---: | --- |")
for job, kind, slot, s, f, outcome in rows:
    print(f"| {job} | {kind} | {slot} | {(f - s) / 1000 if f else float('nan'):.1f} | {outcome} |")
print(f"\nmost attempts running at once: {most} (goal: {g}, one per GPU)")
PY
