#!/usr/bin/env python3
"""Loads a folder written by `sweep-train merge` with transformers and writes its logits.

Usage: merged_logits.py MERGED_DIR ADAPTER_DIR BASE_DIR OUT_DIR

Copies ADAPTER_DIR (adapter_config.json, adapter_model.safetensors) to OUT_DIR, loads MERGED_DIR
with transformers.AutoModelForCausalLM (float32, CPU, eval mode, no adapter) and writes
OUT_DIR/reference.safetensors with BASE_DIR's reference input_ids and the merged model's logits:
`sweep-train conformance OUT_DIR` then compares them with sweep-train's base + adapter logits
(its model tolerance, 1e-4). Exit 3 when transformers warns that a weight is missing or unused.
"""
import logging
import os
import shutil
import sys


def main() -> int:
    if len(sys.argv) != 5:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    merged, adapter, base, out = sys.argv[1:]
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    os.makedirs(out, exist_ok=True)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copyfile(os.path.join(adapter, name), os.path.join(out, name))
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            message = record.getMessage()
            if "not initialized" in message or "not used" in message or "missing" in message.lower():
                records.append(message)

    logging.getLogger("transformers").addHandler(Keep(level=logging.WARNING))
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    if records:
        for r in records:
            print(f"{merged}: transformers warned: {r}", file=sys.stderr)
        return 3
    model.eval()
    ids = load_file(os.path.join(base, "reference.safetensors"))["input_ids"].to(torch.int64)
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float().contiguous()
    save_file({"input_ids": ids.contiguous(), "logits": logits}, os.path.join(out, "reference.safetensors"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
