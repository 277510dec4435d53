#!/usr/bin/env bash
# The GPU benchmark in one run: builds sweep-train if needed, then times every method x track
# with sweep-train and with HF PEFT + transformers on the same GPU (each configuration in its
# own process, so peak memory is per configuration), then DoRA on track B at the Llama-2-7B
# shape (both sides; an out-of-memory is caught and reported), and writes the Markdown table.
#
# Usage: bench/gpu/run.sh [OUT_DIR]            (default bench/gpu/out)
# Environment: SWEEP_TRAIN=path (a built binary; else deploy/build-trainer.sh builds one),
#   SWEEPD_PREFIX_PATH (where nlohmann-json and CLI11 are, for that build), STEPS (10),
#   WARMUP (3), PEAK_TFLOPS (default: datasheet bf16 peak by GPU name), SKIP_7B=1, SKIP_HF_7B=1, ONLY="lora dora"
#   (methods to run), HF_METHODS="dora" (of those, the ones to run on HF PEFT too), SKIP_JORA=1 (no
#   JORA block at the end).
set -uo pipefail
cd "$(dirname "$0")/../.."

out=${1:-bench/gpu/out}
mkdir -p "$out"
results=$out/results.jsonl
log=$out/log.txt
: >"$results"
: >"$log"
python=${PYTHON:-python3}
steps=${STEPS:-10}
warmup=${WARMUP:-3}
methods=${ONLY:-lora dora pre_diag sora oft boft boft_f1 ia3 jora}
echo "STEPS=$steps WARMUP=$warmup ${ONLY:+ONLY=\"$ONLY\" }${SKIP_HF_7B:+SKIP_HF_7B=1 }bench/gpu/run.sh" >"$out/command.txt"
peft_methods=" ${HF_METHODS:-lora dora oft boft ia3} "  # the others are not in HF PEFT
peak=()
[ -n "${PEAK_TFLOPS:-}" ] && peak=(--peak-tflops "$PEAK_TFLOPS")

if [ -z "${SWEEP_TRAIN:-}" ]; then
  echo "building sweep-train (log: $log)"
  build_start=$(date +%s)
  if ! deploy/build-trainer.sh build-gpu-bench >>"$log" 2>&1; then
    echo "build failed:"
    tail -40 "$log"
    exit 1
  fi
  echo "built in $(($(date +%s) - build_start)) s"
  SWEEP_TRAIN=build-gpu-bench/bin/sweep-train
fi

# The run's environment, as the table's header.
"$python" - "$SWEEP_TRAIN" "$(cat "$out/command.txt")" >>"$results" <<'EOF'
import json, subprocess, sys, datetime
import torch, peft, transformers
probe = json.loads(subprocess.run([sys.argv[1], "probe"], capture_output=True, text=True).stdout or "{}")
smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                      "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
print(json.dumps({"type": "env", "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  "gpu": smi, "torch": torch.__version__, "cuda": torch.version.cuda, "peft": peft.__version__,
                  "transformers": transformers.__version__, "sweep_train_torch": probe.get("torch_version"),
                  "command": sys.argv[2]}))
EOF

# Runs one configuration in its own process; appends its JSON line, or an error line.
run_one() {  # impl config method track batch
  local impl=$1 config=$2 method=$3 track=$4 batch=$5 line rc t0
  t0=$(date +%s)
  if [ "$impl" = sweep_train ]; then
    line=$(timeout 300 "$SWEEP_TRAIN" bench --config "$config" --methods bench/gpu/methods.json \
      --method "$method" --track "$track" --batch "$batch" --seq 1024 --warmup "$warmup" --steps "$steps" \
      "${peak[@]}" 2>>"$log" | tail -1)
    rc=${PIPESTATUS[0]}
  else
    line=$(timeout 300 "$python" bench/gpu/hf_peft_bench.py --config "$config" \
      --methods bench/gpu/methods.json --only "$method" --tracks "$track" --batch "$batch" --seq 1024 \
      --warmup "$warmup" --steps "$steps" 2>>"$log" | grep -v '"versions"' | tail -1)
    rc=${PIPESTATUS[0]}
  fi
  if [ -z "$line" ]; then
    line="{\"impl\": \"$impl\", \"method_name\": \"$method\", \"track\": \"$track\", \"config\": \"$config\", \"error\": \"exit status $rc, see log.txt\"}"
  fi
  echo "$line" >>"$results"
  echo "$impl $method $track ($(basename "$config"), batch $batch): rc=$rc, $(($(date +%s) - t0)) s"
}

model=bench/gpu/llama-1.1b.json
for track in A B; do
  for method in $methods; do
    run_one sweep_train "$model" "$method" "$track" 8
    case "$peft_methods" in *" $method "*) run_one hf_peft "$model" "$method" "$track" 8 ;; esac
  done
done
if [ -z "${SKIP_7B:-}" ]; then
  run_one sweep_train bench/gpu/llama-2-7b.json dora B 4
  [ -z "${SKIP_HF_7B:-}" ] && run_one hf_peft bench/gpu/llama-2-7b.json dora B 4
fi

# JORA with the seed design's recipe (methods.json "jora": topk_ema, S 96, k 24, diag core, OER)
# next to LoRA: its 1.1B rows come from the loop above; here the ablation and a selection every
# 5 steps (updates inside the timed window) at 1.1B, and LoRA and JORA at the Llama-2-7B shape,
# both tracks (a row the run already has is not run twice). SKIP_JORA=1 skips this block.
has_row() {  # method track config: whether results.jsonl has that sweep-train row already
  "$python" -c 'import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
sys.exit(0 if any(r.get("impl") == "sweep_train" and r.get("method_name") == sys.argv[2] and r.get("track") == sys.argv[3]
                  and r.get("config") == sys.argv[4] and "tokens_per_s" in r for r in rows) else 1)' "$results" "$@"
}
jora_block=no
case " $methods " in *" jora "*) [ -z "${SKIP_JORA:-}" ] && jora_block=yes ;; esac
if [ "$jora_block" = yes ]; then
  for track in A B; do
    for method in jora_none jora_update5; do run_one sweep_train "$model" "$method" "$track" 8; done
  done
  if [ -z "${SKIP_7B:-}" ]; then
    for track in A B; do
      for method in lora jora; do
        has_row "$method" "$track" bench/gpu/llama-2-7b.json || run_one sweep_train bench/gpu/llama-2-7b.json "$method" "$track" 4
      done
    done
  fi
fi

"$python" bench/gpu/table.py "$results" >"$out/table.md"
[ "$jora_block" = yes ] && { echo; echo "JORA next to LoRA (bench/gpu/jora_table.py):"; echo;
  "$python" bench/gpu/jora_table.py "$results"; } >>"$out/table.md"
cat "$out/table.md"
