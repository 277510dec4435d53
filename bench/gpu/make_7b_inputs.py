#!/usr/bin/env python3
"""Writes what sweeps/gpu-7b-table1.yaml reads, under ROOT (default /tmp/sweepd-7b):

  ROOT/model/   a Hugging Face model folder with random bf16 weights, sharded (5 GB shards and
                model.safetensors.index.json), config.json of SHAPE, and the given tokenizer.json
                with its tokenizer_config.json (bos/eos);
  ROOT/data/    alpaca.jsonl (made-up instructions in Alpaca's instruction/input/output rows),
                gsm8k.jsonl + gsm8k_train.jsonl, arc_challenge.jsonl, mmlu.jsonl + mmlu_dev.jsonl
                in lm-evaluation-harness's row formats (the published data sets' columns).

With torch and transformers (the GPU node) the model is built by transformers directly on the
GPU in bf16 and written by save_pretrained; without them (a development machine, tiny shapes)
the weights are drawn and written by this script alone, in the same layout. The data are
generated from templates with a fixed seed: there is no network on the node.

Usage: make_7b_inputs.py --shape CONFIG.json --tokenizer DIR [--root ROOT] [--shard-gb 5]"""
import argparse
import json
import os
import random
import shutil
import struct
import sys
import time
from array import array


def write_safetensors(path, tensors):
    """tensors: name -> (shape, bf16 bytes). The format: 8-byte header length, JSON header, data."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, (shape, data) in tensors.items():
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, data in tensors.values():
            f.write(data)


def bf16_bytes(n, std, rng):
    """n normal(0, std) values as bf16 (the upper half of each float32)."""
    f32 = array("f", (rng.gauss(0.0, std) for _ in range(n))).tobytes()
    out = bytearray(2 * n)
    out[0::2] = f32[2::4]
    out[1::2] = f32[3::4]
    return bytes(out)


def llama_shapes(c):
    d, inter, layers = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    hd = c.get("head_dim", d // c["num_attention_heads"])
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    shapes = {"model.embed_tokens.weight": [c["vocab_size"], d], "model.norm.weight": [d]}
    if not c.get("tie_word_embeddings", False):
        shapes["lm_head.weight"] = [c["vocab_size"], d]
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes.update({p + "self_attn.q_proj.weight": [q, d], p + "self_attn.k_proj.weight": [kv, d],
                       p + "self_attn.v_proj.weight": [kv, d], p + "self_attn.o_proj.weight": [d, q],
                       p + "mlp.gate_proj.weight": [inter, d], p + "mlp.up_proj.weight": [inter, d],
                       p + "mlp.down_proj.weight": [d, inter], p + "input_layernorm.weight": [d],
                       p + "post_attention_layernorm.weight": [d]})
    return shapes


def write_model_pure_python(folder, config, shard_bytes):
    rng = random.Random(0)
    shards, current, size = [], {}, 0
    for name, shape in llama_shapes(config).items():
        n = 1
        for s in shape:
            n *= s
        if name.endswith("norm.weight"):
            data = struct.pack("<H", 0x3F80) * n  # bf16 1.0
        else:
            data = bf16_bytes(n, 0.02, rng)
        if current and size + len(data) > shard_bytes:
            shards.append(current)
            current, size = {}, 0
        current[name] = (shape, data)
        size += len(data)
    shards.append(current)
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        file = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        write_safetensors(os.path.join(folder, file), shard)
        for name, (_, data) in shard.items():
            weight_map[name] = file
            total += len(data)
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=1)


def write_model_transformers(folder, config, shard_gb):
    import torch
    import transformers
    cls_cfg = transformers.MistralConfig if config.get("model_type") == "mistral" else transformers.LlamaConfig
    cfg = cls_cfg(**{k: v for k, v in config.items() if k not in ("architectures", "model_type")})
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = (transformers.MistralForCausalLM if cls_cfg is transformers.MistralConfig
                 else transformers.LlamaForCausalLM)(cfg)
    torch.set_default_dtype(torch.float32)
    # "5GB", not "5.0GB": transformers parses the number before the unit as an integer.
    model.save_pretrained(folder, max_shard_size=f"{int(shard_gb * 1000)}MB", safe_serialization=True)


# --- data: made-up but realistic rows, from templates with a fixed seed -----------------------

NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Farah", "Gus", "Hana", "Ivan", "Jules", "Kofi", "Lena"]
ITEMS = [("apples", "baskets"), ("pencils", "boxes"), ("stickers", "sheets"), ("cookies", "trays"),
         ("marbles", "bags"), ("books", "shelves"), ("stamps", "albums"), ("eggs", "cartons")]


def gsm8k_rows(rng, n, annotate):
    rows = []
    for _ in range(n):
        who, (thing, holder) = rng.choice(NAMES), rng.choice(ITEMS)
        a, b, c = rng.randint(3, 12), rng.randint(2, 9), rng.randint(1, 20)
        total = a * b + c
        q = (f"{who} has {a} {holder} with {b} {thing} in each, and finds {c} more {thing}. "
             f"How many {thing} does {who} have now?")
        step = f"<<{a}*{b}={a * b}>>" if annotate else ""
        step2 = f"<<{a * b}+{c}={total}>>" if annotate else ""
        ans = (f"{who} has {a} * {b} = {step}{a * b} {thing} in the {holder}.\n"
               f"With {c} more, {who} has {a * b} + {c} = {step2}{total} {thing}.\n#### {total}")
        rows.append({"question": q, "answer": ans})
    return rows


ARC_FACTS = [
    ("Which gas do plants take in from the air to make food?", "carbon dioxide", ["oxygen", "nitrogen", "helium"]),
    ("What causes day and night on Earth?", "Earth rotating on its axis",
     ["the Moon orbiting Earth", "the Sun orbiting Earth", "clouds blocking sunlight"]),
    ("Which of these is a renewable resource?", "wind", ["coal", "oil", "natural gas"]),
    ("What is the main source of energy for Earth's water cycle?", "the Sun", ["the Moon", "volcanoes", "wind"]),
    ("Which tool is best for measuring the mass of a rock?", "a balance", ["a ruler", "a thermometer", "a graduated cylinder"]),
    ("Which change is a chemical change?", "iron rusting", ["ice melting", "paper being cut", "water boiling"]),
    ("What part of a plant takes in water from the soil?", "the roots", ["the leaves", "the flowers", "the stem tip"]),
    ("Which state of matter has a definite volume but no definite shape?", "liquid", ["solid", "gas", "plasma"]),
    ("Why does a metal spoon feel colder than a wooden spoon at room temperature?",
     "metal conducts heat away from the hand faster", ["metal is always colder", "wood produces heat", "metal absorbs light"]),
    ("Which organ pumps blood through the human body?", "the heart", ["the lungs", "the liver", "the stomach"]),
    ("What force pulls objects toward the center of Earth?", "gravity", ["magnetism", "friction", "air resistance"]),
    ("Which layer of Earth lies directly below the crust?", "the mantle", ["the inner core", "the outer core", "the atmosphere"]),
]

MMLU_FACTS = {
    "high_school_biology": [
        ("Which organelle produces most of a cell's ATP?", "mitochondrion", ["nucleus", "ribosome", "vacuole"]),
        ("DNA is made of repeating units called?", "nucleotides", ["amino acids", "fatty acids", "monosaccharides"]),
        ("Which molecule carries oxygen in red blood cells?", "hemoglobin", ["insulin", "keratin", "collagen"]),
        ("Photosynthesis takes place in the?", "chloroplast", ["mitochondrion", "nucleus", "Golgi body"]),
        ("Which process makes two identical daughter cells?", "mitosis", ["meiosis", "fertilization", "osmosis"]),
        ("Enzymes speed up reactions by?", "lowering the activation energy", ["raising the temperature",
                                                                              "adding energy", "changing the products"]),
    ],
    "astronomy": [
        ("Which planet is closest to the Sun?", "Mercury", ["Venus", "Mars", "Earth"]),
        ("What is the Sun mainly made of?", "hydrogen and helium", ["iron and nickel", "oxygen and carbon", "rock"]),
        ("A light-year measures?", "distance", ["time", "brightness", "mass"]),
        ("Which planet has the most prominent ring system?", "Saturn", ["Mars", "Mercury", "Venus"]),
        ("The Moon's phases are caused by?", "the changing angle at which we see its sunlit half",
         ["Earth's shadow", "clouds", "the Moon's rotation stopping"]),
        ("What keeps the planets in orbit around the Sun?", "gravity", ["magnetism", "solar wind", "friction"]),
    ],
}


def choice_row(rng, question, right, wrong):
    options = [right] + list(wrong)
    rng.shuffle(options)
    return question, options, options.index(right)


def arc_rows(rng, n):
    rows = []
    for i in range(n):
        q, opts, k = choice_row(rng, *ARC_FACTS[i % len(ARC_FACTS)])
        labels = ["A", "B", "C", "D"]
        rows.append({"id": f"made-up-{i}", "question": q, "choices": {"text": opts, "label": labels},
                     "answerKey": labels[k]})
    return rows


def mmlu_rows(rng, n, offset):
    rows, subjects = [], list(MMLU_FACTS) + ["elementary_mathematics"]
    for i in range(n):
        s = subjects[i % len(subjects)]
        if s == "elementary_mathematics":
            a, b = rng.randint(2, 30), rng.randint(2, 30)
            right = a * b
            q, opts, k = choice_row(rng, f"What is {a} * {b}?", str(right),
                                    [str(right + d) for d in rng.sample([-3, -2, -1, 1, 2, 3, a, b], 3)])
        else:
            facts = MMLU_FACTS[s]
            q, opts, k = choice_row(rng, *facts[(i // len(subjects) + offset) % len(facts)])
        rows.append({"question": q, "subject": s, "choices": opts, "answer": k})
    return rows


TASKS = [("Rewrite the sentence in the passive voice.", "The committee approved the new budget.",
          "The new budget was approved by the committee."),
         ("Summarize the text in one sentence.",
          "The city council met on Monday to discuss repairs to the old bridge. Engineers said the steel "
          "supports were corroded and recommended closing the bridge to trucks until spring.",
          "Engineers told the council the old bridge's corroded supports mean trucks should be kept off it until spring."),
         ("Classify the sentiment of the review as positive, negative or neutral.",
          "The battery lasts all day, but the screen scratches far too easily.", "Neutral: it praises the battery and criticises the screen."),
         ("Translate the sentence into French.", "The library opens at nine in the morning.",
          "La bibliothèque ouvre à neuf heures du matin."),
         ("Give three tips for staying focused while studying.", "",
          "1. Put your phone in another room.\n2. Work in 25-minute blocks with short breaks.\n3. Write down what you will finish before you start."),
         ("Explain what a prime number is to a ten-year-old.", "",
          "A prime number is a number bigger than 1 that you can only divide evenly by 1 and by itself, like 2, 3, 5 or 7."),
         ("Write a short, polite email declining a meeting invitation.", "Meeting: quarterly planning, Thursday 3 pm.",
          "Hello,\n\nThank you for the invitation to Thursday's quarterly planning meeting. Unfortunately I have a prior commitment at 3 pm. Could you share the notes afterwards?\n\nBest regards"),
         ("Correct the grammar in the sentence.", "Me and him goes to the market every saturdays.",
          "He and I go to the market every Saturday.")]


def alpaca_rows(rng, n):
    rows = []
    for i in range(n):
        if i % 3 == 0:
            g = gsm8k_rows(rng, 1, annotate=False)[0]
            rows.append({"instruction": "Solve the math word problem and show your steps.", "input": g["question"],
                         "output": g["answer"].replace("\n#### ", "\nThe answer is ")})
        elif i % 3 == 1:
            q, opts, k = choice_row(rng, *ARC_FACTS[rng.randrange(len(ARC_FACTS))])
            rows.append({"instruction": "Answer the science question and explain briefly.",
                         "input": q + " Options: " + "; ".join(opts) + ".",
                         "output": f"The answer is {opts[k]}."})
        else:
            inst, inp, out = TASKS[rng.randrange(len(TASKS))]
            rows.append({"instruction": inst, "input": inp, "output": out})
    return rows


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", required=True, help="config.json of the model's shape (bench/gpu/llama-2-7b.json)")
    p.add_argument("--tokenizer", required=True, help="folder with tokenizer.json and tokenizer_config.json")
    p.add_argument("--root", default="/tmp/sweepd-7b")
    p.add_argument("--shard-gb", type=float, default=5)
    p.add_argument("--pure-python", action="store_true", help="never use torch (tiny shapes)")
    args = p.parse_args()
    with open(args.shape) as f:
        config = json.load(f)
    model_dir, data_dir = os.path.join(args.root, "model"), os.path.join(args.root, "data")
    shutil.rmtree(model_dir, ignore_errors=True)
    os.makedirs(model_dir)
    os.makedirs(data_dir, exist_ok=True)
    t0 = time.time()
    use_torch = not args.pure_python
    if use_torch:
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError:
            use_torch = False
    if use_torch:
        write_model_transformers(model_dir, config, args.shard_gb)
    else:
        write_model_pure_python(model_dir, config, int(args.shard_gb * 1e9))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(args.tokenizer, name), os.path.join(model_dir, name))
    size = sum(os.path.getsize(os.path.join(model_dir, f)) for f in os.listdir(model_dir) if f.endswith(".safetensors"))
    print(f"make_7b_inputs: {model_dir}: {size / 1e9:.2f} GB of bf16 safetensors "
          f"({'transformers' if use_torch else 'pure Python'}) in {time.time() - t0:.1f} s", file=sys.stderr)
    rng = random.Random(1234)
    write_jsonl(os.path.join(data_dir, "alpaca.jsonl"), alpaca_rows(rng, 400))
    write_jsonl(os.path.join(data_dir, "gsm8k.jsonl"), gsm8k_rows(rng, 48, annotate=False))
    write_jsonl(os.path.join(data_dir, "gsm8k_train.jsonl"), gsm8k_rows(rng, 8, annotate=True))
    write_jsonl(os.path.join(data_dir, "arc_challenge.jsonl"), arc_rows(rng, 48))
    write_jsonl(os.path.join(data_dir, "mmlu.jsonl"), mmlu_rows(rng, 48, 0))
    write_jsonl(os.path.join(data_dir, "mmlu_dev.jsonl"), mmlu_rows(rng, 15, 3))
    print(f"make_7b_inputs: data in {data_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
