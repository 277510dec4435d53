#!/usr/bin/env python3
"""JORA next to LoRA from bench/gpu/run.sh's results.jsonl: per model shape and track, sweep-train's
tokens/s for LoRA and for the JORA entries of bench/gpu/methods.json (jora = the seed design's
recipe with topk_ema selection; jora_none and jora_update5 where they ran), the ratio to LoRA,
MFU, peak memory, whether the CUDA graph was used, and the goal (JORA >= 0.8x LoRA's tokens/s)
checked on the recipe's rows. Usage: jora_table.py RESULTS.jsonl"""
import json
import os
import sys

GOAL = 0.8
JORA_ROWS = [("jora", "JORA, topk_ema every 50 steps (the recipe)"),
             ("jora_update5", "JORA, topk_ema every 5 steps"),
             ("jora_none", "JORA, selection none")]


def load(path):
    rows = {}
    with open(path) as f:
        for line in f:
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if r.get("impl") != "sweep_train":
                continue
            model = os.path.splitext(os.path.basename(r.get("config", "")))[0]
            rows[(model, r.get("method_name"), r.get("track"))] = r
    return rows


def ok(r):
    return r is not None and "tokens_per_s" in r and not r.get("oom")


def cell(r, fmt):
    if r is None:
        return "—"
    if r.get("oom"):
        return "OOM"
    if "error" in r:
        return "failed"
    return fmt(r)


def main():
    rows = load(sys.argv[1])
    models = sorted({m for (m, _, _) in rows}, key=lambda m: (m != "llama-1.1b", m))
    out = ["| shape | track | method | tok/s | x LoRA | MFU | peak GB | graph |",
           "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |"]
    goals = []
    for model in models:
        for track in ["A", "B"]:
            lora = rows.get((model, "lora", track))
            if lora is None and not any((model, m, track) in rows for m, _ in JORA_ROWS):
                continue
            entries = [("lora", "LoRA r16")] + JORA_ROWS
            for name, label in entries:
                r = rows.get((model, name, track))
                if r is None and name != "jora":
                    continue
                ratio = "—"
                if ok(r) and ok(lora) and name != "lora":
                    ratio = f"{r['tokens_per_s'] / lora['tokens_per_s']:.2f}x"
                mfu = cell(r, lambda x: f"{100 * x['mfu']:.1f}%" if x.get("mfu") is not None else "—")
                out.append(f"| {model} | {track} | {label} | {cell(r, lambda x: format(x['tokens_per_s'], ',.0f'))} "
                           f"| {ratio} | {mfu} "
                           f"| {cell(r, lambda x: format(x['peak_mem_bytes'] / 1e9, '.1f'))} "
                           f"| {cell(r, lambda x: 'yes' if x.get('cuda_graph') else 'no')} |")
            jora = rows.get((model, "jora", track))
            if ok(jora) and ok(lora):
                s = jora["tokens_per_s"] / lora["tokens_per_s"]
                goals.append(f"- {'met' if s >= GOAL else 'NOT met'}: JORA (recipe) {model} track {track} >= "
                             f"{GOAL}x LoRA's tokens/s — {s:.2f}x"
                             f"{'' if s >= GOAL else f', {GOAL - s:.2f} short'}; CUDA graph "
                             f"{'used' if jora.get('cuda_graph') else 'NOT used'}")
            else:
                goals.append(f"- NOT met: JORA (recipe) {model} track {track} >= {GOAL}x LoRA's tokens/s — "
                             f"not measured (a side did not run)")
    print("\n".join(out + ["", "Goal, checked on these figures:", ""] + goals))


if __name__ == "__main__":
    main()
