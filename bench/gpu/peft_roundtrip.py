#!/usr/bin/env python3
"""Loads one exported sweep-train adapter folder with Hugging Face PEFT and writes PEFT's logits.

Usage: peft_roundtrip.py ADAPTER_DIR BASE_DIR OUT_DIR

Copies ADAPTER_DIR (adapter_config.json, adapter_model.safetensors) to OUT_DIR, loads BASE_DIR
with transformers (float32, CPU, eval mode) and the copy with PeftModel.from_pretrained, and
writes OUT_DIR/reference.safetensors with the base folder's reference input_ids and PEFT's
logits for them: the layout `sweep-train conformance OUT_DIR` compares against. Exit 3 when
PEFT warns while loading (an unknown config key, a missing or unexpected tensor, ...): a
warning means PEFT built something other than what was trained. The one exception is PEFT 0.21's
rank_pattern warning on a pruned AdaLoRA folder, which PEFT gives for its own folders too: it is
tolerated only after checking that (check_adalora_pattern_warning).
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


ADALORA_PATTERN_WARNING = "The following rank_pattern keys did not match any targeted module and were ignored"


def is_adalora_pattern_warning(folder, w):
    """PEFT 0.21's check of rank_pattern keys against module names (tuners_utils.py) warns for
    every pruned AdaLoRA folder, its own included: AdaLoRA's keys name the lora_E parameters
    (`model.layers.0.self_attn.q_proj.lora_E`), which no module name matches, and PEFT then
    resizes the modules by that pattern all the same (resize_modules_by_rank_pattern)."""
    import json

    with open(os.path.join(folder, "adapter_config.json")) as f:
        config = json.load(f)
    return config.get("peft_type") == "ADALORA" and config.get("rank_pattern") and \
        str(w.message).startswith(ADALORA_PATTERN_WARNING)


def check_adalora_pattern_warning(model, folder, base, message):
    """Tolerates that warning only where it is PEFT's own: PEFT applied the pattern (every
    layer's lora_E has as many rows as the pattern keeps), PEFT's own save_pretrained of the
    loaded adapter writes the same rank_pattern and tensors as our folder, and loading PEFT's own
    folder gives the same warning. Raises otherwise."""
    import json
    import tempfile

    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    with open(os.path.join(folder, "adapter_config.json")) as f:
        ours = json.load(f)
    inner = model.base_model.model
    for key, keep in ours["rank_pattern"].items():
        module = inner.get_submodule(key[: -len(".lora_E")])
        rows = module.lora_E["default"].shape[0]
        if rows != sum(keep):
            raise SystemExit(f"{folder}: PEFT ignored rank_pattern[{key}]: lora_E has {rows} rows, the pattern keeps {sum(keep)}")
    with tempfile.TemporaryDirectory() as peft_dir:
        model.save_pretrained(peft_dir)
        with open(os.path.join(peft_dir, "adapter_config.json")) as f:
            theirs = json.load(f)
        if theirs.get("rank_pattern") != ours["rank_pattern"]:
            raise SystemExit(f"{folder}: PEFT's own save writes another rank_pattern than ours")
        a = load_file(os.path.join(folder, "adapter_model.safetensors"))
        b = load_file(os.path.join(peft_dir, "adapter_model.safetensors"))
        if {k: tuple(v.shape) for k, v in a.items()} != {k: tuple(v.shape) for k, v in b.items()}:
            raise SystemExit(f"{folder}: PEFT's own save writes other tensors than ours")
        with warnings.catch_warnings(record=True) as again:
            warnings.simplefilter("always")
            PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), peft_dir)
        if not any(str(w.message) == message for w in again):
            raise SystemExit(f"{folder}: PEFT warned about our rank_pattern but not about its own: {message}")
    print(f"{folder}: tolerated PEFT 0.21's rank_pattern warning, which it also gives for its own save of this "
          f"adapter (same rank_pattern and tensors); the pattern was applied ({len(ours['rank_pattern'])} layers)",
          file=sys.stderr)


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
        if is_adalora_pattern_warning(out, w):
            check_adalora_pattern_warning(model, out, base, str(w.message))
            continue
        records.append(f"{w.category.__name__} ({os.path.basename(w.filename)}:{w.lineno}): {w.message}")
    if records:
        for r in records:
            print(f"{out}: PEFT warned: {r}", file=sys.stderr)
        return 3
    write_reference_logits(model, base, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
