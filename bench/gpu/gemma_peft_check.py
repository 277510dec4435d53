#!/usr/bin/env python3
"""Does a LoRA adapter that sweep-train trained on the tiny Gemma fixture load in Hugging Face
PEFT and give sweep-train's logits? Trains a few LoRA steps with `sweep-train run` (track B: every
linear layer), loads the exported `adapter/` folder with `PeftModel.from_pretrained` on
transformers' GemmaForCausalLM, writes PEFT's logits on the fixture's input_ids as a
reference.safetensors into a copy of the adapter folder and lets `sweep-train conformance` compare
its own logits through the adapter with them (max |difference| 1e-4, float32).

Usage (repository root, on a machine with torch, transformers, peft and safetensors):
  python3 bench/gpu/gemma_peft_check.py --sweep-train build-gpu/bin/sweep-train [--out DIR]
Exit status 0 when the logits agree and the adapter is not the identity, 1 otherwise."""
import argparse
import json
import os
import shutil
import subprocess
import sys

import torch
import peft
import transformers
from safetensors.torch import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep-train", required=True, help="path of a built sweep-train")
    ap.add_argument("--out", default="/tmp/gemma-peft-check", help="work folder (emptied first)")
    ap.add_argument("--model", default=os.path.join(FIXTURES, "models", "tiny-gemma"))
    ap.add_argument("--tokenizer", default=os.path.join(FIXTURES, "tokenizer", "tiny.model"),
                    help="tokenizer for the training data (its vocabulary must fit the model's)")
    ap.add_argument("--device", default="cpu", help="sweep-train's device for training (cpu, cuda)")
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()

    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    job = {"job_id": "gemma-peft-check",
           "model": {"source": os.path.abspath(args.model), "tokenizer": os.path.abspath(args.tokenizer)},
           "track": {"name": "B"},
           "adapter": {"method": "lora", "r": 4, "alpha": 8},
           "train": {"data": "synthetic:mc", "steps": args.steps, "lr": 0.01, "seq_len": 64,
                     "tokens_per_update": 512, "micro_batch": 8, "log_every": 5},
           "eval": [], "device": args.device}
    with open(os.path.join(args.out, "job.json"), "w") as f:
        json.dump(job, f)
    work = os.path.join(args.out, "work")
    subprocess.run([args.sweep_train, "run", "--job", os.path.join(args.out, "job.json"), "--workdir", work],
                   check=True, stdout=open(os.path.join(args.out, "train.jsonl"), "w"))

    ref = load_file(os.path.join(args.model, "reference.safetensors"))
    ids = ref["input_ids"].to(torch.int64)
    base = transformers.AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32).eval()
    with torch.no_grad():
        base_logits = base(input_ids=ids).logits
    model = peft.PeftModel.from_pretrained(base, os.path.join(work, "adapter")).eval()
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    moved = (logits - base_logits).abs().max().item()
    print(f"PEFT logits move from the base model's by {moved:.3e} (must be > 1e-3: the adapter is not the identity)")

    checked = os.path.join(args.out, "adapter-with-reference")
    shutil.copytree(os.path.join(work, "adapter"), checked)
    save_file({"input_ids": ids, "logits": logits.contiguous()}, os.path.join(checked, "reference.safetensors"),
              metadata={"made_by": f"peft {peft.__version__}, transformers {transformers.__version__}"})
    status = subprocess.run([args.sweep_train, "conformance", checked]).returncode
    ok = status == 0 and moved > 1e-3
    print(f"peft {peft.__version__}, transformers {transformers.__version__}, torch {torch.__version__}: "
          f"{'ok' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
