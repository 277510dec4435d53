#!/usr/bin/env python3
"""Writes a JSON Lines corpus of about MB megabytes for bench/gpu/tokenizer_bench.sh, from
the repository's own prose and code (README.md, docs/*.md, sweeps/README.md and the C++
sources): rows {"instruction", "response"} of sentences and lines drawn at random (seeded),
with numbers, and one non-English sentence in about every tenth row, so that the encoder
meets new words and not one paragraph repeated. Needs no network.

Usage: bench/gpu/make_tokenizer_corpus.py OUT.jsonl [MB]   (default 100)
"""
import json
import pathlib
import random
import re
import sys

root = pathlib.Path(__file__).resolve().parents[2]
out_path = pathlib.Path(sys.argv[1])
target = int(float(sys.argv[2]) * 1e6) if len(sys.argv) > 2 else 100_000_000

texts = []
for pattern in ["README.md", "docs/*.md", "sweeps/README.md", "tests/fixtures/README.md"]:
    for path in sorted(root.glob(pattern)):
        texts += [s.strip() for s in re.split(r"(?<=[.!?])\s+", path.read_text(encoding="utf-8")) if s.strip()]
for path in sorted(root.glob("worker/**/*.cc")) + sorted(root.glob("server/*.cc")):
    texts += [l for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
foreign = ["Der schnelle braune Fuchs springt über den faulen Hund.", "Le cœur a ses raisons que la raison ne connaît point.",
           "El veloz murciélago hindú comía feliz cardillo y kiwi.", "東京は日本の首都です。", "데이터 세트를 다시 확인하세요.",
           "Съешь же ещё этих мягких французских булок.", "Ταχίστη αλώπηξ βαφής ψημένη γη."]
rng = random.Random(0)
written = 0
with out_path.open("w", encoding="utf-8") as out:
    while written < target:
        instruction = " ".join(rng.choice(texts) for _ in range(rng.randint(1, 4)))
        response = " ".join(rng.choice(texts) for _ in range(rng.randint(2, 8)))
        response += f" The answer is {rng.randint(0, 10**rng.randint(1, 9))}."
        if rng.random() < 0.1:
            response += " " + rng.choice(foreign)
        line = json.dumps({"instruction": instruction, "response": response}, ensure_ascii=False)
        out.write(line + "\n")
        written += len(instruction.encode()) + len(response.encode())
print(f"{out_path}: {written / 1e6:.1f} MB of text")
