#!/usr/bin/env bash
# Where a 7B training step's time goes: one Llama-2-7B LoRA track-A step (batch 4 x 1024, bf16,
# CUDA graph as in the benchmark) under LibTorch's Kineto profiler, after the timed steps of
# `sweep-train bench`. Writes OUT_DIR/lora-A.trace.json (chrome://tracing or ui.perfetto.dev),
# OUT_DIR/lora-A.trace.json.summary.md (GPU time by kernel group: GEMM, attention, norms,
# elementwise, reductions, loss, optimizer, copies, idle gaps; the top kernels) and the bench
# line; then the same without the CUDA graph (launch gaps show there).
# Usage: bench/gpu/profile.sh [OUT_DIR]       (default bench/gpu/out-profile)
# Environment: SWEEP_TRAIN (default build-gpu/bin/sweep-train), CONFIG (default bench/gpu/llama-2-7b.json).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-bench/gpu/out-profile}
train=${SWEEP_TRAIN:-build-gpu/bin/sweep-train}
config=${CONFIG:-bench/gpu/llama-2-7b.json}
mkdir -p "$out"
for variant in graph eager; do
  extra=()
  [ "$variant" = eager ] && extra=(--no-cuda-graph)
  t0=$(date +%s)
  "$train" bench --config "$config" --methods bench/gpu/methods.json --method lora --track A --batch 4 --seq 1024 \
    --warmup 2 --steps 3 --profile "$out/lora-A-$variant.trace.json" "${extra[@]}" \
    >"$out/lora-A-$variant.json" 2>"$out/lora-A-$variant.log" || { tail -20 "$out/lora-A-$variant.log"; exit 1; }
  echo "## LoRA A, Llama-2-7B, $variant ($(($(date +%s) - t0)) s)"
  cat "$out/lora-A-$variant.json"
  cat "$out/lora-A-$variant.trace.json.summary.md"
  gzip -f "$out/lora-A-$variant.trace.json"
done
