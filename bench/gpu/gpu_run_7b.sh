#!/usr/bin/env bash
# The seed design's main table at 7B on one GPU, end to end (docs/gpu-run.md): writes a
# Llama-2-7B-shaped model folder (random bf16 weights, sharded safetensors, the real Llama-2
# tokenizer.json) and the data of sweeps/gpu-7b-table1.yaml (bench/gpu/make_7b_inputs.py),
# times loading it onto the GPU once (sweep-train bench --model --load-only), then runs the
# sweep through sweepd, sweep-workers sharing the GPU (one slot each) and sweep-train
# (deploy/run-sweep.sh), exports the table (Markdown, CSV, LaTeX) and prints per-job times.
#
# Usage: bench/gpu/gpu_run_7b.sh [OUT_DIR]          (default bench/gpu/out-7b)
# Environment: SWEEPD_BIN (sweepd, sweep-worker, sweepctl: a bundle's bin/, default build/bin),
#   SWEEP_TRAIN (default build-gpu/bin/sweep-train), TOKENIZER (a folder with the Llama-2
#   tokenizer.json + tokenizer_config.json; default: unpacked from .gpu-deps/tokenizer-bench.tar.gz),
#   SHAPE (config.json of the shape, default bench/gpu/llama-2-7b.json), DEVICE (cuda; cpu: the
#   spec is rewritten to CPU slots, 3 steps of 256 tokens, 3 items per task -- with
#   SHAPE=bench/gpu/llama-tiny-32k.json WORKERS=1, a check of the whole path without a GPU),
#   WORKERS (local workers, each with one slot on the GPU -- sweep-worker --slots counts devices,
#   so jobs share the one GPU through several workers; default 3: a 7B track-A job at 4,096
#   tokens a step may peak near 36 GB, as DoRA A does in the benchmark; 3 fit in 139 GB).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-bench/gpu/out-7b}
root=/tmp/sweepd-7b  # the spec's paths
python=${PYTHON:-python3}
shape=${SHAPE:-bench/gpu/llama-2-7b.json}
device=${DEVICE:-cuda}
workers=${WORKERS:-3}
export SWEEP_TRAIN=${SWEEP_TRAIN:-build-gpu/bin/sweep-train}
spec=sweeps/gpu-7b-table1.yaml
start=$(date +%s)
mkdir -p "$out" "$root"
rm -rf "$root/var"

if [ -z "${TOKENIZER:-}" ]; then
  [ -f .gpu-deps/tokenizer-bench.tar.gz ] || {
    echo "gpu_run_7b: no TOKENIZER and no .gpu-deps/tokenizer-bench.tar.gz (bench/gpu/pack-tokenizer-deps.sh makes it)" >&2
    exit 2
  }
  tar xzf .gpu-deps/tokenizer-bench.tar.gz -C "$root" tokenizers/llama2
  TOKENIZER=$root/tokenizers/llama2
fi
"$python" bench/gpu/make_7b_inputs.py --shape "$shape" --tokenizer "$TOKENIZER" --root "$root" 2>&1 | tee "$out/make.log"
echo "gpu_run_7b: inputs ready at $(($(date +%s) - start)) s"

# The spec with base.model at the folder just made (the spec names the seed designs' placeholder).
sed -e "s|model: /models/Llama-2-7b-hf,|model: $root/model,|" "$spec" >"$root/gpu-7b-table1.yaml"
spec=$root/gpu-7b-table1.yaml
if [ "$device" != cuda ]; then
  # The same sweep on CPU slots, smaller batches and fewer steps and items (a check of the path).
  sed -i -e 's/resources: {device: cuda, memory_gib: 24}/resources: {device: cpu}/' \
    -e 's/steps: 12,/steps: 3,/' -e 's/seq_len: 512, tokens_per_update: 4096, micro_batch: 8/seq_len: 64, tokens_per_update: 256, micro_batch: 4/' \
    -e 's/limit: 32/limit: 3/g' -e 's/max_gen_toks: 32/max_gen_toks: 4/' "$spec"
fi

"$SWEEP_TRAIN" bench --model "$root/model" --load-only --device "$device" --dtype bf16 | tee "$out/load.json"
echo "gpu_run_7b: load check done at $(($(date +%s) - start)) s"

sweep_start=$(date +%s)
status=0
SWEEPD_VAR=$root/var SWEEPD_EXPORT=$out deploy/run-sweep.sh "$spec" "$workers" \
  >"$out/run-sweep.log" 2>&1 || status=$?
echo "gpu_run_7b: run-sweep.sh exit $status after $(($(date +%s) - sweep_start)) s (log $out/run-sweep.log)"
tail -25 "$out/run-sweep.log"
"$python" bench/gpu/job_timings.py "$root/var" | tee "$out/jobs.md"
cp "$root/var/"*.log "$out/" 2>/dev/null || true
echo
cat "$out/results.md" 2>/dev/null || true
echo "gpu_run_7b: $(($(date +%s) - start)) s in all"
exit "$status"
