#!/usr/bin/env bash
# One job across devices on CUDA (docs/job-config.md "One job across devices"): the same
# LoRA job on the tiny Llama fixture (float32, track B, 20 steps, 4 micro-batches per
# update) with `devices` 1 and G (default 2), and the step losses compared (pass: every step
# within 1e-3 relative). With G GPUs visible the ranks use NCCL, one GPU each; with fewer,
# ranks share a GPU over gloo (a check of the code path, not of speed). Prints one table.
#
# Usage: bench/gpu/ranks_check.sh [OUT_DIR] ; SWEEP_TRAIN=path, G=2, STEPS=20
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
out=$(realpath -m "${1:-bench/gpu/out-ranks}")
mkdir -p "$out"
steps=${STEPS:-20}
g=${G:-2}
export NCCL_NVLS_ENABLE=0
SWEEP_TRAIN=$(realpath "${SWEEP_TRAIN:?set SWEEP_TRAIN to a built sweep-train}")
base=$root/tests/fixtures/models/tiny-llama
tokenizer=$root/tests/fixtures/tokenizer/tiny.model
for devices in 1 "$g"; do
  work=$out/d$devices
  rm -rf "$work" && mkdir -p "$work"
  cat >"$work/job.json" <<JOB
{"job_id": "ranks-check", "kind": "train", "devices": $devices,
 "model": {"source": "$base", "tokenizer": "$tokenizer", "dtype": "float32"},
 "track": {"name": "B"}, "adapter": {"method": "lora", "r": 8, "alpha": 16},
 "train": {"data": "synthetic:mc", "steps": $steps, "lr": 0.003, "warmup_ratio": 0.0, "seq_len": 64,
           "tokens_per_update": 1024, "micro_batch": 4, "log_every": 1, "checkpoint_every": 0},
 "eval": [], "tradeoff": {"lambda": 1.0}, "seed": 0, "device": "cuda"}
JOB
  start=$(date +%s.%N)
  if ! "$SWEEP_TRAIN" run --job "$work/job.json" --workdir "$work/run" >"$work/run.jsonl" 2>"$work/run.err"; then
    echo "devices=$devices FAILED: $(tail -3 "$work/run.err")"; exit 1
  fi
  echo "devices=$devices: $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s"
done
python3 - "$out" "$g" <<'PY'
import json, sys
out, g = sys.argv[1], sys.argv[2]
def losses(d):
    return [json.loads(l)["loss"] for l in open(f"{out}/d{d}/run.jsonl") if '"type":"step"' in l]
a, b = losses(1), losses(g)
worst = max(abs(x - y) / max(abs(x), 1e-12) for x, y in zip(a, b)) if a and len(a) == len(b) else float("inf")
print(f"| devices | steps | loss at last step (1 / {g}) | largest relative loss difference | pass (1e-3) |")
print("| --- | ---: | --- | ---: | --- |")
print(f"| 1 vs {g} | {len(a)} | {a[-1]:.6f} / {b[-1]:.6f} | {worst:.2e} | {'pass' if worst <= 1e-3 else 'FAIL'} |")
sys.exit(0 if worst <= 1e-3 else 1)
PY
