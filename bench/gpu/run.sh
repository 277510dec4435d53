#!/usr/bin/env bash
# The GPU benchmark in one run: builds sweep-train if needed, then times every method x track
# with sweep-train and with HF PEFT + transformers on the same GPU at the 1.1B shape, then the
# 7B shapes (Llama-2-7B, Mistral-7B: LoRA, DoRA, OFT, IA3 on both sides, Pre-Diag, SORA, JORA
# on ours), and writes the Markdown table with the goals checked (bench/gpu/table.py).
# sweep-train runs each configuration in its own process; HF PEFT runs one process per shape
# that builds the base model once and wraps, trains and unwraps it per configuration (peak
# memory is reset per configuration; hf_peft_bench.py). Every row prints its wall time.
#
# Usage: bench/gpu/run.sh [OUT_DIR]            (default bench/gpu/out)
# Environment: SWEEP_TRAIN=path (a built binary; else deploy/build-trainer.sh builds one),
#   SWEEPD_PREFIX_PATH (where nlohmann-json and CLI11 are, for that build), STEPS (5),
#   WARMUP (2), STEPS_7B (3), WARMUP_7B (2), PEAK_TFLOPS (default: datasheet bf16 peak by GPU
#   name), SKIP_7B=1, SKIP_HF_7B=1, ONLY="lora dora" (1.1B methods to run), ONLY_7B (7B methods
#   on ours), HF_METHODS="dora" (of the 1.1B ones, those to run on HF PEFT too), HF_METHODS_7B,
#   BUDGET_S (540: a row not started by then is skipped, recorded as such, so that the table is
#   still written inside one 9.5-minute device call), SKIP_JORA=1 (no JORA selection block).
set -uo pipefail
cd "$(dirname "$0")/../.."

out=${1:-bench/gpu/out}
mkdir -p "$out"
results=$out/results.jsonl
log=$out/log.txt
: >"$results"
: >"$log"
python=${PYTHON:-python3}
steps=${STEPS:-5}
warmup=${WARMUP:-2}
steps_7b=${STEPS_7B:-3}
warmup_7b=${WARMUP_7B:-2}
methods=${ONLY:-lora dora pre_diag sora oft boft boft_f1 ia3 jora}
methods_7b=${ONLY_7B:-lora dora pre_diag sora oft ia3 jora}
echo "STEPS=$steps WARMUP=$warmup STEPS_7B=$steps_7b WARMUP_7B=$warmup_7b ${ONLY:+ONLY=\"$ONLY\" }${SKIP_7B:+SKIP_7B=1 }${SKIP_HF_7B:+SKIP_HF_7B=1 }bench/gpu/run.sh" >"$out/command.txt"
peft_methods=" ${HF_METHODS:-lora dora oft boft ia3} "  # the others are not in HF PEFT
peft_methods_7b=" ${HF_METHODS_7B:-lora dora oft ia3} "
run_start=$(date +%s)
budget=${BUDGET_S:-540}

# True (and an error line recorded) when the time budget is spent: the row is skipped.
over_budget() {  # impl config method track [seconds the row needs at least]
  [ $(($(date +%s) - run_start + ${5:-0})) -lt "$budget" ] && return 1
  echo "{\"impl\": \"$1\", \"method_name\": \"$3\", \"track\": \"$4\", \"config\": \"$2\", \"error\": \"skipped: past the ${budget} s budget\"}" >>"$results"
  echo "$1 $3 $4 ($(basename "$2")): skipped, past the ${budget} s budget"
}
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

# Runs one sweep-train configuration in its own process; appends its JSON line, or an error line.
run_one() {  # config method track batch warmup steps
  local config=$1 method=$2 track=$3 batch=$4 wu=$5 st=$6 line rc t0
  over_budget sweep_train "$config" "$method" "$track" && return
  t0=$(date +%s%N)
  line=$(timeout 240 "$SWEEP_TRAIN" bench --config "$config" --methods bench/gpu/methods.json \
    --method "$method" --track "$track" --batch "$batch" --seq 1024 --warmup "$wu" --steps "$st" \
    "${peak[@]}" 2>>"$log" | tail -1)
  rc=${PIPESTATUS[0]}
  if [ -z "$line" ]; then
    line="{\"impl\": \"sweep_train\", \"method_name\": \"$method\", \"track\": \"$track\", \"config\": \"$config\", \"error\": \"exit status $rc, see log.txt\"}"
  fi
  echo "$line" >>"$results"
  echo "sweep_train $method $track ($(basename "$config"), batch $batch): rc=$rc, $(awk "BEGIN { printf \"%.1f\", ($(date +%s%N) - $t0) / 1e9 }") s"
}

# Runs HF PEFT on every (method, track) of one shape in one process (the base model is built
# once); appends each row's line, and an error line for each row that printed none.
run_peft() {  # config "methods" batch warmup steps
  local config=$1 list=$2 batch=$3 wu=$4 st=$5 rc t0 tmp m left
  left=$((budget - ($(date +%s) - run_start)))
  if [ "$left" -le 10 ]; then
    for m in $list; do over_budget hf_peft "$config" "$m" A 10; over_budget hf_peft "$config" "$m" B 10; done
    return
  fi
  t0=$(date +%s)
  tmp=$(mktemp)
  # shellcheck disable=SC2086  # $list: words to commas
  # No longer than the budget left: the rows it did not print are recorded as missing.
  timeout "$left" "$python" bench/gpu/hf_peft_bench.py --config "$config" --methods bench/gpu/methods.json \
    --only "$(echo $list | tr ' ' ',')" --tracks A,B --batch "$batch" --seq 1024 --warmup "$wu" --steps "$st" \
    2>>"$log" | grep -v '"versions"' >"$tmp"
  rc=${PIPESTATUS[0]}
  cat "$tmp" >>"$results"
  "$python" - "$tmp" "$config" "$list" "$rc" >>"$results" <<'EOF'
import json, sys
path, config, methods, rc = sys.argv[1:]
rows = [json.loads(l) for l in open(path) if l.strip()]
done = {(r["method_name"], r["track"]) for r in rows}
for r in rows:
    print(f"hf_peft {r['method_name']} {r['track']} ({config.split('/')[-1]}): {r.get('elapsed_s', 0):.1f} s"
          + (" (out of memory)" if r.get("oom") else ""), file=sys.stderr)
for track in "AB":
    for m in methods.split():
        if (m, track) not in done:
            print(json.dumps({"impl": "hf_peft", "method_name": m, "track": track, "config": config,
                              "error": f"no line (process exit status {rc}), see log.txt"}))
EOF
  rm -f "$tmp"
  echo "hf_peft $(basename "$config") [$list ] x A,B: rc=$rc, $(($(date +%s) - t0)) s in all"
}

model=bench/gpu/llama-1.1b.json
for track in A B; do
  for method in $methods; do
    run_one "$model" "$method" "$track" 8 "$warmup" "$steps"
  done
done
hf_list=""
for method in $methods; do
  case "$peft_methods" in *" $method "*) hf_list="$hf_list $method" ;; esac
done
[ -n "$hf_list" ] && run_peft "$model" "$hf_list" 8 "$warmup" "$steps"
echo "1.1B block done at $(($(date +%s) - run_start)) s"

# The 7B shapes, batch 4 x 1024, fewer steps (a 7B step takes 0.25-0.75 s).
if [ -z "${SKIP_7B:-}" ]; then
  for model in bench/gpu/llama-2-7b.json bench/gpu/mistral-7b.json; do
    for track in A B; do
      for method in $methods_7b; do
        run_one "$model" "$method" "$track" 4 "$warmup_7b" "$steps_7b"
      done
    done
    hf_list=""
    for method in $methods_7b; do
      case "$peft_methods_7b" in *" $method "*) hf_list="$hf_list $method" ;; esac
    done
    [ -z "${SKIP_HF_7B:-}" ] && [ -n "$hf_list" ] && run_peft "$model" "$hf_list" 4 "$warmup_7b" "$steps_7b"
    echo "$(basename "$model") block done at $(($(date +%s) - run_start)) s"
  done
fi

# JORA with the seed design's recipe (methods.json "jora": topk_ema, S 96, k 24, diag core, OER)
# is in the rows above at every shape; here, at 1.1B, the ablation (selection none) and a
# selection every 5 steps (updates inside the timed window, so the replayed CUDA graph is seen
# to survive them). SKIP_JORA=1 skips this block.
jora_block=no
case " $methods " in *" jora "*) [ -z "${SKIP_JORA:-}" ] && jora_block=yes ;; esac
if [ "$jora_block" = yes ]; then
  for track in A B; do
    for method in jora_none jora_update5; do run_one bench/gpu/llama-1.1b.json "$method" "$track" 8 "$warmup" "$steps"; done
  done
fi

echo "benchmark: $(($(date +%s) - run_start)) s in all"
"$python" bench/gpu/table.py "$results" >"$out/table.md"
[ "$jora_block" = yes ] && { echo; echo "JORA next to LoRA (bench/gpu/jora_table.py):"; echo;
  "$python" bench/gpu/jora_table.py "$results"; } >>"$out/table.md"
cat "$out/table.md"
