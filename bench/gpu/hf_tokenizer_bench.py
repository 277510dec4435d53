#!/usr/bin/env python3
"""Hugging Face tokenizers' single-thread encoding speed over the string fields of a JSONL
file, the counterpart of `sweep-train tokenizer-bench` (same rows, same fields, reading not
timed). `Tokenizer.encode` runs on the calling thread; RAYON_NUM_THREADS=1 and
TOKENIZERS_PARALLELISM=false keep the library from starting others. Prints one JSON line.

Usage: bench/gpu/hf_tokenizer_bench.py --tokenizer tokenizer.json --data rows.jsonl [--repeat N]
"""
import argparse
import json
import os
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import tokenizers  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--tokenizer", required=True)
parser.add_argument("--data", required=True)
parser.add_argument("--repeat", type=int, default=1)
args = parser.parse_args()

t0 = time.perf_counter()
tok = tokenizers.Tokenizer.from_file(args.tokenizer)
load_s = time.perf_counter() - t0
texts = []
with open(args.data, encoding="utf-8") as f:
    for line in f:
        if line.strip():
            texts += [v for v in json.loads(line).values() if isinstance(v, str)]
mb = sum(len(t.encode()) for t in texts) / 1e6
best, tokens = None, 0
for _ in range(args.repeat):
    start = time.perf_counter()
    tokens = sum(len(tok.encode(t, add_special_tokens=False).ids) for t in texts)
    s = time.perf_counter() - start
    best = s if best is None else min(best, s)
print(json.dumps({"impl": "hf_tokenizers", "version": tokenizers.__version__, "tokenizer": args.tokenizer,
                  "texts": len(texts), "mb": mb, "seconds": best, "mb_per_s": mb / best, "tokens": tokens,
                  "load_seconds": load_s, "threads": 1}))
