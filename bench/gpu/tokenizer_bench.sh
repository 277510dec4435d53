#!/usr/bin/env bash
# Tokenizer speed in one run: the same JSONL corpus (bench/gpu/make_tokenizer_corpus.py,
# ~100 MB) encoded by `sweep-train tokenizer-bench` and by Hugging Face tokenizers, both on
# one thread, for each tokenizer.json given; prints a Markdown table of MB/s and whether the
# token counts agree.
#
# Usage: bench/gpu/tokenizer_bench.sh OUT_DIR TOKENIZER_JSON...
# Environment: SWEEP_TRAIN=path (else deploy/build-trainer.sh builds one; for tokenizer.json
#   regular expressions it needs PCRE2: SWEEPD_PREFIX_PATH naming the folder that
#   bench/gpu/pack-tokenizer-deps.sh made), CORPUS_MB (100), REPEAT (1), PYTHON (python3).
set -uo pipefail
cd "$(dirname "$0")/../.."

out=${1:?usage: bench/gpu/tokenizer_bench.sh OUT_DIR TOKENIZER_JSON...}
shift
[ $# -gt 0 ] || { echo "tokenizer_bench: name at least one tokenizer.json" >&2; exit 2; }
mkdir -p "$out"
python=${PYTHON:-python3}
log=$out/log.txt
: >"$log"
if [ -z "${SWEEP_TRAIN:-}" ]; then
  echo "building sweep-train (log: $log)"
  deploy/build-trainer.sh build-gpu-bench >>"$log" 2>&1 || { tail -40 "$log"; exit 1; }
  SWEEP_TRAIN=build-gpu-bench/bin/sweep-train
fi
corpus=$out/corpus.jsonl
[ -f "$corpus" ] || "$python" bench/gpu/make_tokenizer_corpus.py "$corpus" "${CORPUS_MB:-100}"
results=$out/results.jsonl
: >"$results"
for tj in "$@"; do
  "$SWEEP_TRAIN" tokenizer-bench --tokenizer "$tj" --data "$corpus" --repeat "${REPEAT:-1}" >>"$results" 2>>"$log" ||
    echo "{\"impl\": \"sweep_train\", \"tokenizer\": \"$tj\", \"error\": \"see log.txt\"}" >>"$results"
  "$python" bench/gpu/hf_tokenizer_bench.py --tokenizer "$tj" --data "$corpus" --repeat "${REPEAT:-1}" >>"$results" 2>>"$log" ||
    echo "{\"impl\": \"hf_tokenizers\", \"tokenizer\": \"$tj\", \"error\": \"see log.txt\"}" >>"$results"
done
"$python" - "$results" <<'PY' | tee "$out/table.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| tokenizer.json | MB | sweep-train MB/s | HF tokenizers MB/s | ratio | same token count |")
print("| --- | ---: | ---: | ---: | ---: | --- |")
for tj in dict.fromkeys(r["tokenizer"] for r in rows):
    ours = next((r for r in rows if r["tokenizer"] == tj and r["impl"] == "sweep_train"), {})
    hf = next((r for r in rows if r["tokenizer"] == tj and r["impl"] == "hf_tokenizers"), {})
    if "mb_per_s" not in ours or "mb_per_s" not in hf:
        print(f"| {tj} | | {ours.get('mb_per_s', ours.get('error', ''))} | {hf.get('mb_per_s', hf.get('error', ''))} | | |")
        continue
    print(f"| {tj} | {ours['mb']:.1f} | {ours['mb_per_s']:.2f} | {hf['mb_per_s']:.2f} | "
          f"{ours['mb_per_s'] / hf['mb_per_s']:.2f} | {'yes' if ours['tokens'] == hf['tokens'] else 'no: %d vs %d' % (ours['tokens'], hf['tokens'])} |")
PY
