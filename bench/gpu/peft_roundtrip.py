#!/usr/bin/env python3
"""Loads one exported sweep-train adapter folder with Hugging Face PEFT and writes PEFT's logits.

Usage: peft_roundtrip.py ADAPTER_DIR BASE_DIR OUT_DIR

Copies ADAPTER_DIR (adapter_config.json, adapter_model.safetensors) to OUT_DIR, loads BASE_DIR
with transformers (float32, CPU, eval mode) and the copy with PeftModel.from_pretrained, and
writes OUT_DIR/reference.safetensors with the base folder's reference input_ids and PEFT's
logits for them: the layout `sweep-train conformance OUT_DIR` compares against. Exit 3 when
PEFT warns while loading (an unknown config key, a missing or unexpected tensor, ...): a
warning means PEFT built something other than what was trained.
"""
import logging
import os
import shutil
import sys
import warnings


class BlockDiagExtension:
    """The interface of PEFT's fbd_cuda extension (boft/fbd/fbd_cuda.cpp) in plain torch."""

    @staticmethod
    def forward(blocks):
        import torch

        return [torch.stack([torch.block_diag(*torch.unbind(z)) for z in torch.unbind(blocks)])]

    @staticmethod
    def backward(grad_output, blocks):
        import torch

        n, d, b, _ = blocks.shape
        grad = torch.stack([torch.stack([g[i * b:(i + 1) * b, i * b:(i + 1) * b] for i in range(d)])
                            for g in torch.unbind(grad_output)])
        return [grad.reshape(n, d, b, b)]


def install_block_diag():
    """Makes PEFT's BOFT use BlockDiagExtension instead of compiling fbd_cuda."""
    import peft.tuners.boft.layer as boft_layer

    boft_layer._FBD_CUDA = BlockDiagExtension()
    print("BOFT: PEFT's fbd_cuda extension replaced by a pure-torch block_diag (same forward/backward)",
          file=sys.stderr)


def copy_adapter(adapter, out):
    """Copies an adapter folder's two files to `out`, where the reference file goes beside them."""
    os.makedirs(out, exist_ok=True)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copyfile(os.path.join(adapter, name), os.path.join(out, name))


def write_reference_logits(model, base, out):
    """Writes out/reference.safetensors: the base folder's reference input_ids and `model`'s
    float32 logits for them, the layout `sweep-train conformance OUT_DIR` reads."""
    import torch
    from safetensors.torch import load_file, save_file

    model.eval()
    ids = load_file(os.path.join(base, "reference.safetensors"))["input_ids"].to(torch.int64)
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float().contiguous()
    save_file({"input_ids": ids.contiguous(), "logits": logits}, os.path.join(out, "reference.safetensors"))


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    adapter, base, out = sys.argv[1:]
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    import json

    with open(os.path.join(adapter, "adapter_config.json")) as f:
        if json.load(f).get("peft_type") == "BOFT":
            install_block_diag()
    copy_adapter(adapter, out)

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(f"{record.name}: {record.getMessage()}")

    peft_log = logging.getLogger("peft")
    peft_log.addHandler(Keep(level=logging.WARNING))
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = PeftModel.from_pretrained(model, out)
    for w in caught:
        records.append(f"{w.category.__name__} ({os.path.basename(w.filename)}:{w.lineno}): {w.message}")
    if records:
        for r in records:
            print(f"{out}: PEFT warned: {r}", file=sys.stderr)
        return 3
    write_reference_logits(model, base, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
