#!/usr/bin/env python3
"""Evaluation speed of sweep-train against Hugging Face transformers, both in one run, on the
same random-weight model and the same items: GSM8K 5-shot (greedy, at most 256 new tokens,
batched generate with a KV cache) and ARC-Challenge (log-likelihood of each choice, batched).
Reports items/s of each side and whether every prediction is identical (GSM8K: the generated
ids; ARC: the acc and acc_norm choices).

There is no network on the GPU machine and no Llama tokenizer in the repository, so both sides
use byte tokens (ids 0-255 are bytes, EOS 257, as sweep-train's byte tokenizer): prompts are
about 3x longer in tokens than with Llama-2's tokenizer. The task rows are generated in the data
sets' own formats (fixed seed). The model has Llama-2-7B's shape (bench/gpu/llama-2-7b.json,
vocabulary 32000) with transformers' random initialisation.

Usage: bench/gpu/eval_bench.py --sweep-train BIN [--out DIR] [--gsm8k-items 64] [--arc-items 256]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import time

import safetensors.torch
import torch
import transformers

EOS = 257
UNTIL = ["Question:", "</s>", "<|im_end|>"]


def encode(text):
    return list(text.encode("utf-8"))


def decode(ids):
    return bytes(i for i in ids if 0 <= i < 256)


def gsm8k_row(rng):
    a, b, c = rng.randint(2, 90), rng.randint(2, 90), rng.randint(2, 9)
    name = rng.choice(["Ann", "Bob", "Mia", "Tom", "Sara", "Ravi", "Lena", "Omar"])
    thing = rng.choice(["apples", "pens", "stamps", "marbles", "books", "coins"])
    q = (f"{name} has {a} {thing}. A friend gives {name} {b} more, and then {name} buys {c} boxes "
         f"with {a} {thing} in each box. How many {thing} does {name} have now?")
    total = a + b + c * a
    ans = (f"{name} first has {a} + {b} = <<{a}+{b}={a + b}>>{a + b} {thing}.\nThe boxes hold "
           f"{c} * {a} = <<{c}*{a}={c * a}>>{c * a} {thing}.\nSo {name} has {a + b} + {c * a} = "
           f"<<{a + b}+{c * a}={total}>>{total} {thing}.\n#### {total}")
    return {"question": q, "answer": ans}


def arc_row(rng, i):
    words = ["energy", "water", "rock", "light", "heat", "plants", "soil", "air", "sound", "metal"]
    q = (f"Which of the following best explains why {rng.choice(words)} changes when "
         f"{rng.choice(words)} is added to a closed system in experiment {i}?")
    choices = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 6))) for _ in range(4)]
    return {"id": f"b{i}", "question": q, "choices": {"text": choices, "label": ["A", "B", "C", "D"]},
            "answerKey": rng.choice("ABCD")}


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def make_folder(folder, config_path, n_gsm8k, n_arc):
    os.makedirs(folder, exist_ok=True)
    rng = random.Random(1234)
    write_jsonl(f"{folder}/gsm8k_fewshot.jsonl", [gsm8k_row(rng) for _ in range(5)])
    write_jsonl(f"{folder}/gsm8k.jsonl", [gsm8k_row(rng) for _ in range(n_gsm8k)])
    write_jsonl(f"{folder}/arc_challenge.jsonl", [arc_row(rng, i) for i in range(n_arc)])
    with open(f"{folder}/reference.json", "w") as f:
        json.dump({"made_by": "bench/gpu/eval_bench.py (settings only)",
                   "settings": {"max_gen_toks": 256, "until": UNTIL},
                   "tasks": {"gsm8k": {"num_fewshot": 5}, "arc_challenge": {"num_fewshot": 0}}}, f)
    if os.path.exists(f"{folder}/model/config.json"):
        return
    with open(config_path) as f:
        cfg = json.load(f)
    config = transformers.LlamaConfig(**{k: v for k, v in cfg.items()
                                         if k not in ("architectures", "model_type", "torch_dtype")})
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = transformers.LlamaForCausalLM(config).to(torch.float32)
    model.save_pretrained(f"{folder}/model", safe_serialization=True, max_shard_size="100GB")
    del model
    torch.cuda.empty_cache()


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def gsm8k_prompts(folder):
    shots = "".join(f"Question: {r['question']}\nAnswer: {r['answer']}\n\n"
                    for r in read_jsonl(f"{folder}/gsm8k_fewshot.jsonl")[:5])
    return [shots + f"Question: {r['question']}\nAnswer:" for r in read_jsonl(f"{folder}/gsm8k.jsonl")]


def arc_items(folder):
    out = []
    for r in read_jsonl(f"{folder}/arc_challenge.jsonl"):
        out.append({"context": f"Question: {r['question']}\nAnswer:",
                    "choices": r["choices"]["text"]})
    return out


def stop_row(ids):
    """Cuts the new ids where the harness's generate_until stops: EOS, or the token after
    which the decoded text holds a stop string."""
    out = []
    for i in ids:
        out.append(int(i))
        if i == EOS or any(s.encode() in decode(out) for s in UNTIL):
            break
    return out


class StopOnStrings(transformers.StoppingCriteria):
    def __init__(self, start):
        self.start = start

    def __call__(self, input_ids, scores, **kwargs):
        done = [any(s.encode() in decode(row[self.start:].tolist()) for s in UNTIL) for row in input_ids]
        return torch.tensor(done, device=input_ids.device)


@torch.no_grad()
def hf_side(folder, batch, loglik_rows):
    with torch.device("cuda"):
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig.from_pretrained(f"{folder}/model"))
    model = model.to(torch.float32).eval()
    model.load_state_dict(safetensors.torch.load_file(f"{folder}/model/model.safetensors", device="cuda"), strict=True)
    results = {}
    # GSM8K: left-padded batches, longest first, as sweep-train groups them.
    prompts = gsm8k_prompts(folder)
    order = sorted(range(len(prompts)), key=lambda i: -len(encode(prompts[i])))
    generated = [None] * len(prompts)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for b0 in range(0, len(order), batch):
        group = [encode(prompts[i]) for i in order[b0:b0 + batch]]
        width = max(len(g) for g in group)
        ids = torch.full((len(group), width), EOS, dtype=torch.long)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        for r, g in enumerate(group):
            ids[r, width - len(g):] = torch.tensor(g)
            mask[r, width - len(g):] = 1
        out = model.generate(ids.cuda(), attention_mask=mask.cuda(), max_new_tokens=256, do_sample=False,
                             eos_token_id=EOS, pad_token_id=EOS, temperature=None, top_p=None, top_k=None,
                             stopping_criteria=transformers.StoppingCriteriaList([StopOnStrings(width)]))
        for r, i in enumerate(order[b0:b0 + batch]):
            generated[i] = stop_row(out[r, width:].tolist())
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    results["gsm8k"] = {"seconds": seconds, "items_per_s": len(prompts) / seconds,
                        "items": [{"prompt": p, "generated_ids": g} for p, g in zip(prompts, generated)]}
    # ARC-Challenge: every (context, continuation) scored, rows padded on the right, longest first.
    items = arc_items(folder)
    requests = []
    for k, it in enumerate(items):
        ctx = encode(it["context"])
        for c in it["choices"]:
            requests.append((k, ctx, encode(" " + c)))
    order = sorted(range(len(requests)), key=lambda i: -(len(requests[i][1]) + len(requests[i][2])))
    scores = [0.0] * len(requests)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for b0 in range(0, len(order), loglik_rows):
        group = [requests[i] for i in order[b0:b0 + loglik_rows]]
        rows = [(ctx + cont)[:-1] for _, ctx, cont in group]
        width = max(len(r) for r in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            ids[r, :len(row)] = torch.tensor(row)
        logp = torch.log_softmax(model(ids.cuda()).logits.float(), -1)
        for r, (_, ctx, cont) in enumerate(group):
            first = len(ctx) - 1
            pos = torch.arange(first, first + len(cont), device="cuda")
            scores[order[b0 + r]] = logp[r, pos, torch.tensor(cont, device="cuda")].sum().item()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    out_items, n = [], 0
    for it in items:
        ll = scores[n:n + len(it["choices"])]
        n += len(it["choices"])
        norm = [s / len(c) for s, c in zip(ll, it["choices"])]
        out_items.append({"context": it["context"], "loglik": ll, "pred": max(range(len(ll)), key=ll.__getitem__),
                          "pred_norm": max(range(len(norm)), key=norm.__getitem__)})
    results["arc_challenge"] = {"seconds": seconds, "items_per_s": len(items) / seconds, "items": out_items}
    del model
    torch.cuda.empty_cache()
    return results


def compare(ours, theirs):
    rows = []
    g_o, g_t = ours["tasks"]["gsm8k"]["items"], theirs["gsm8k"]["items"]
    same_prompt = all(a["prompt"] == b["prompt"] for a, b in zip(g_o, g_t))
    same = sum(a["generated_ids"] == b["generated_ids"] for a, b in zip(g_o, g_t))
    rows.append(("GSM8K 5-shot, 256 new tokens", len(g_t), ours["tasks"]["gsm8k"]["items_per_s"],
                 theirs["gsm8k"]["items_per_s"], f"{same}/{len(g_t)} identical generations"
                 + ("" if same_prompt else " (PROMPTS DIFFER)")))
    a_o, a_t = ours["tasks"]["arc_challenge"]["items"], theirs["arc_challenge"]["items"]
    same = sum(a["pred"] == b["pred"] and a["pred_norm"] == b["pred_norm"] for a, b in zip(a_o, a_t))
    worst = max(abs(x - y) / max(abs(y), 1e-30) for a, b in zip(a_o, a_t) for x, y in zip(a["loglik"], b["loglik"]))
    rows.append(("ARC-Challenge (4 choices)", len(a_t), ours["tasks"]["arc_challenge"]["items_per_s"],
                 theirs["arc_challenge"]["items_per_s"],
                 f"{same}/{len(a_t)} identical acc and acc_norm predictions; log-likelihoods within {worst:.1e} relative"))
    lines = ["| task | items | sweep-train items/s | transformers items/s | ratio | predictions |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for task, n, o, t, note in rows:
        lines.append(f"| {task} | {n} | {o:.2f} | {t:.2f} | {o / t:.2f}x | {note} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sweep-train", required=True)
    p.add_argument("--out", default="bench/gpu/out-eval")
    p.add_argument("--config", default=os.path.join(os.path.dirname(__file__), "llama-2-7b.json"))
    p.add_argument("--gsm8k-items", type=int, default=64)
    p.add_argument("--arc-items", type=int, default=256)
    p.add_argument("--batch", type=int, default=16, help="GSM8K prompts decoded together (both sides)")
    p.add_argument("--loglik-rows", type=int, default=32, help="transformers: rows per log-likelihood forward")
    a = p.parse_args()
    folder = f"{a.out}/folder"
    make_folder(folder, a.config, a.gsm8k_items, a.arc_items)
    cmd = [a.sweep_train, "eval", folder, "--device", "cuda", "--dtype", "float32", "--tokenizer", "byte",
           "--generation-batch", str(a.batch), "--out", f"{a.out}/sweep_train.json"]
    print("running:", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True)
    with open(f"{a.out}/sweep_train.json") as f:
        ours = json.load(f)
    theirs = hf_side(folder, a.batch, a.loglik_rows)
    with open(f"{a.out}/transformers.json", "w") as f:
        json.dump(theirs, f)
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip()
    head = (f"Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {smi}: torch {torch.__version__}, "
            f"transformers {transformers.__version__}, float32, Llama-2-7B shape, random weights, byte tokens. "
            f"Command: `{' '.join(sys.argv)}`.")
    table = head + "\n\n" + compare(ours, theirs) + "\n"
    with open(f"{a.out}/table.md", "w") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main()
