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
import sys

from peft_roundtrip import copy_adapter, write_reference_logits


def main() -> int:
    if len(sys.argv) != 5:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    merged, adapter, base, out = sys.argv[1:]
    import torch
    from transformers import AutoModelForCausalLM

    copy_adapter(adapter, out)
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
    write_reference_logits(model, base, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
