#!/usr/bin/env bash
# Every method with PEFT's layout, through real PEFT: trains a few steps on the tiny Llama
# fixture with `sweep-train run` (cuda, float32 weights, track B), loads the exported adapter/
# with PeftModel.from_pretrained (bench/gpu/peft_roundtrip.py: any PEFT warning fails the row),
# writes PEFT's logits as reference.safetensors beside a copy of the folder, and compares them
# with `sweep-train conformance` on that copy (pass at 1e-5). Every row, the methods PEFT lacks
# too, is also merged with `sweep-train merge`, the merged folder loaded with transformers'
# AutoModelForCausalLM (bench/gpu/merged_logits.py) and its logits compared with sweep-train's
# base + adapter logits by `sweep-train conformance` (pass at 1e-4, float32). BOFT rows load with
# a pure-torch stand-in for PEFT's fbd_cuda extension (peft_roundtrip.py says so on stderr).
# Prints one table: method, settings, PEFT's max |Δlogit| and verdict, the merge's and verdict.
#
# Usage: bench/gpu/peft_roundtrip.sh [OUT_DIR]      (default bench/gpu/out-peft)
# Environment: SWEEP_TRAIN=path (a built binary; else deploy/build-trainer.sh builds one),
#   PYTHON (python3 with torch, transformers, peft), STEPS (12), DEVICE (cuda), ONLY="lora oft" (rows).
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
out=$(realpath -m "${1:-bench/gpu/out-peft}")
mkdir -p "$out"
log=$out/log.txt
: >"$log"
python=${PYTHON:-python3}
steps=${STEPS:-12}
device=${DEVICE:-cuda}
base=$root/tests/fixtures/models/tiny-llama
tokenizer=$root/tests/fixtures/tokenizer/tiny.model
"$python" -c "import peft, torch, transformers; print('peft', peft.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$log"

if [ -z "${SWEEP_TRAIN:-}" ]; then
  echo "building sweep-train (log: $log)"
  if ! deploy/build-trainer.sh build-gpu-bench >>"$log" 2>&1; then
    echo "build failed:"; tail -40 "$log"; exit 1
  fi
  SWEEP_TRAIN=build-gpu-bench/bin/sweep-train
fi
SWEEP_TRAIN=$(realpath "$SWEEP_TRAIN")

# row name -> adapter settings (track B: down_proj has d_in 176, so OFT blocks of 16).
declare -A rows=(
  [lora]='{"method": "lora", "r": 4, "alpha": 8}'
  [rslora]='{"method": "rslora", "r": 4, "alpha": 8}'
  [dora]='{"method": "dora", "r": 4, "alpha": 8}'
  [lora_plus]='{"method": "lora_plus", "r": 4, "alpha": 8, "lr_ratio": 16}'
  [ia3]='{"method": "ia3"}'
  [oft]='{"method": "oft", "oft_block_size": 16}'
  [oft_coft]='{"method": "oft", "oft_block_size": 16, "coft": true, "eps": 0.0001}'
  [oft_neumann]='{"method": "oft", "oft_block_size": 16, "use_cayley_neumann": true, "num_cayley_neumann_terms": 5}'
  [oft_coft_neumann]='{"method": "oft", "oft_block_size": 16, "coft": true, "eps": 0.0001, "use_cayley_neumann": true}'
  [boft]='{"method": "boft", "boft_block_size": 4, "boft_n_butterfly_factor": 1}'
  [boft_f2]='{"method": "boft", "boft_block_size": 4, "boft_n_butterfly_factor": 2}'
  [adalora]='{"method": "adalora", "init_r": 6, "target_r": 2, "tinit": 2, "tfinal": 2, "deltaT": 1}'
  [pre_diag]='{"method": "pre_diag", "r": 4, "alpha": 8}'
  [sora]='{"method": "sora", "r": 4, "r_p": 2}'
  [sorsa]='{"method": "sorsa", "r": 4}'
  [jora]='{"method": "jora", "S": 8, "k": 4}'
)
# Methods PEFT lacks: merge check only.
declare -A no_peft=([pre_diag]=1 [sora]=1 [sorsa]=1 [jora]=1)
order="lora rslora dora lora_plus ia3 oft oft_coft oft_neumann oft_coft_neumann boft boft_f2 adalora pre_diag sora sorsa jora"
table=$out/table.md
printf '| method | settings | PEFT max abs logit diff | PEFT pass (1e-5) | merged max abs logit diff | merged pass (1e-4) |\n| --- | --- | --- | --- | --- | --- |\n' >"$table"

# Largest logit difference `sweep-train conformance DIR` reports, and whether it is <= $2.
conformance_row() {
  "$SWEEP_TRAIN" conformance "$1" >"$1.conformance.txt" 2>&1
  local d
  d=$(awk '$1 == "logits" {print $2}' "$1.conformance.txt")
  if [ -n "$d" ] && "$python" -c "import sys; sys.exit(0 if float('$d') <= $2 else 1)"; then
    echo "$d pass"
  else
    echo "${d:--} FAIL($(head -1 "$1.conformance.txt" | tr ' ' '_'))"
  fi
}
failed=0
for row in ${ONLY:-$order}; do
  settings=${rows[$row]:?unknown row $row (rows: $order)}
  work=$out/$row
  rm -rf "$work" && mkdir -p "$work"
  cat >"$work/job.json" <<JOB
{"job_id": "peft-$row", "kind": "train",
 "model": {"source": "$base", "tokenizer": "$tokenizer", "dtype": "float32"},
 "track": {"name": "B"}, "adapter": $settings,
 "train": {"data": "synthetic:mc", "steps": $steps, "lr": 0.01, "warmup_ratio": 0.0, "seq_len": 64,
           "tokens_per_update": 256, "micro_batch": 8, "log_every": 4, "checkpoint_every": 0},
 "eval": [], "tradeoff": {"lambda": 1.0}, "seed": 0, "device": "$device"}
JOB
  diff="-" verdict="FAIL" mdiff="-" mverdict="FAIL"
  if ! "$SWEEP_TRAIN" run --job "$work/job.json" --workdir "$work/run" >"$work/run.jsonl" 2>"$work/run.err"; then
    verdict="FAIL (train: $(tail -1 "$work/run.err"))" mverdict=$verdict
  elif [ ! -f "$work/run/adapter/adapter_config.json" ]; then
    verdict="FAIL (no adapter/ exported)" mverdict=$verdict
  else
    if [ -n "${no_peft[$row]:-}" ]; then
      verdict="n/a (not in PEFT)"
    elif ! "$python" bench/gpu/peft_roundtrip.py "$work/run/adapter" "$base" "$work/peft" 2>"$work/peft.err"; then
      verdict="FAIL (PEFT: $(tail -1 "$work/peft.err"))"
    else
      read -r diff verdict <<<"$(conformance_row "$work/peft" 1e-5)"
      if grep -q "tolerated PEFT 0.21's rank_pattern warning" "$work/peft.err"; then
        verdict="$verdict (PEFT warned about rank_pattern, as for its own save)"
      fi
    fi
    if ! "$SWEEP_TRAIN" merge --model "$base" --adapter "$work/run/adapter" --out "$work/merged" \
        --dtype float32 >"$work/merge.out" 2>&1; then
      mverdict="FAIL (merge: $(tail -1 "$work/merge.out"))"
    elif ! "$python" bench/gpu/merged_logits.py "$work/merged" "$work/run/adapter" "$base" "$work/merged-check" \
        2>"$work/merged.err"; then
      mverdict="FAIL (transformers: $(tail -1 "$work/merged.err"))"
    else
      read -r mdiff mverdict <<<"$(conformance_row "$work/merged-check" 1e-4)"
    fi
  fi
  [ "${verdict%% *}" = pass ] || [ -n "${no_peft[$row]:-}" ] || failed=1
  [ "$mverdict" = pass ] || failed=1
  printf '| %s | `%s` | %s | %s | %s | %s |\n' "$row" "$settings" "${diff:--}" "$verdict" "${mdiff:--}" "$mverdict" \
    | tee -a "$table"
done
echo "table: $table"
exit $failed
