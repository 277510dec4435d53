#!/usr/bin/env python3
"""Training throughput and peak memory of Hugging Face PEFT + transformers, the baseline
that bench/gpu/run.sh sets sweep-train against. Same model (random weights), same adapter
settings (methods.json), same batch, sequence length, dtype and optimizer as sweep-train.
Prints one JSON object per (method, track) on stdout.

The base model is built once per process, in bf16 directly on the GPU, and every (method,
track) wraps it with PEFT, trains, and unwraps it again (PeftModel.unload()), so a 7B shape
pays its model creation once, not once per row. Each row's peak memory is measured from a
reset after the previous row's tensors are freed: the base weights plus that row's adapter,
optimizer state and activations, as in a process of its own. `elapsed_s` is a row's wall time
(PEFT wrapping, warm-up and timed steps)."""
import argparse
import gc
import json
import sys
import time

import torch
import peft
import transformers

TRACKS = {
    "A": ["q_proj", "v_proj"],
    "B": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}


def peft_config(settings, modules):
    m = settings["method"]
    if m in ("lora", "dora"):
        return peft.LoraConfig(r=settings["r"], lora_alpha=settings["alpha"], lora_dropout=0.0,
                               target_modules=modules, use_dora=(m == "dora"))
    if m == "oft":
        return peft.OFTConfig(r=0, oft_block_size=settings["oft_block_size"], target_modules=modules,
                              module_dropout=0.0,
                              use_cayley_neumann=settings.get("use_cayley_neumann", False))
    if m == "boft":
        return peft.BOFTConfig(boft_block_size=settings["boft_block_size"],
                               boft_n_butterfly_factor=settings["boft_n_butterfly_factor"],
                               target_modules=modules, boft_dropout=0.0)
    if m == "ia3":
        ff = [x for x in modules if x in ("gate_proj", "up_proj", "down_proj")]
        ff_in = [x for x in ff if x == "down_proj"]
        return peft.IA3Config(target_modules=modules, feedforward_modules=ff_in)
    return None  # not in PEFT (Pre-Diag, SORA, JORA)


def boft_factors(model):
    """The butterfly factors PEFT actually built (it drops to 1 without its CUDA extension)."""
    for name, p in model.named_parameters():
        if "boft_R" in name:
            return int(p.shape[0])
    return None


def make_base(config):
    """The random-weight base model in bf16, created on the GPU (no float32 copy, no host init)."""
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            model_cls = (transformers.MistralForCausalLM if isinstance(config, transformers.MistralConfig)
                         else transformers.LlamaForCausalLM)
            model = model_cls(config)
    finally:
        torch.set_default_dtype(previous)
    model.config.use_cache = False
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def run(method, settings, track, args, config, base):
    """One row; returns (result, base) -- the base again, unwrapped, for the next row."""
    cfg = peft_config(settings, TRACKS[track])
    if cfg is None:
        return None, base
    row_start = time.perf_counter()
    torch.manual_seed(0)
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    result = {"method": settings["method"], "method_name": method, "track": track, "impl": "hf_peft",
              "config": args.config, "batch": args.batch, "seq": args.seq, "steps": args.steps,
              "warmup": args.warmup}
    model = None
    try:
        model = peft.get_peft_model(base, cfg)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        result["trainable_params"] = trainable
        if settings["method"] == "boft":
            result["boft_factors"] = boft_factors(model)
        result["adapter_dtypes"] = sorted({str(p.dtype).replace("torch.", "")
                                           for p in model.parameters() if p.requires_grad})
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-4, fused=True)
        ids = torch.randint(0, config.vocab_size, (args.batch, args.seq), device="cuda")
        model.train()

        def step():
            out = model(input_ids=ids, labels=ids)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            return out.loss.detach()

        for _ in range(args.warmup):
            step()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            loss = step()
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - t0
        result.update({"tokens_per_s": args.batch * args.seq * args.steps / elapsed,
                       "step_time_s": elapsed / args.steps,
                       "peak_mem_bytes": torch.cuda.max_memory_allocated(),
                       "loss": float(loss)})
    except torch.cuda.OutOfMemoryError:
        result.update({"oom": True, "peak_mem_bytes": torch.cuda.max_memory_allocated()})
    result["elapsed_s"] = time.perf_counter() - row_start
    opt = params = ids = step = None  # noqa: F841 -- frees the row's tensors before the next row
    if model is not None:
        try:
            base = model.unload()  # the base layers back in place, adapters dropped
        except Exception as e:  # noqa: BLE001 -- a method PEFT cannot unload: build a fresh base
            print(f"hf_peft_bench: unload after {method} {track} failed ({e}); rebuilding the base",
                  file=sys.stderr)
            del model
            base = None
            gc.collect()
            torch.cuda.empty_cache()
            base = make_base(config)
    if hasattr(base, "peft_config"):
        del base.peft_config  # else the next get_peft_model warns of a second modification
    for p in base.parameters():
        p.grad = None
        p.requires_grad_(False)
    return result, base


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", required=True, help="model config.json (random weights)")
    p.add_argument("--methods", required=True, help="methods.json")
    p.add_argument("--only", default="", help="comma-separated methods (default: all)")
    p.add_argument("--tracks", default="A,B")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args()
    with open(args.config) as f:
        cfg_json = json.load(f)
    # Mistral-7B's shape (GQA, no sliding window: v0.3) as transformers' Mistral classes.
    config_cls = transformers.MistralConfig if cfg_json.get("model_type") == "mistral" else transformers.LlamaConfig
    config = config_cls(**{k: v for k, v in cfg_json.items() if k not in ("architectures", "model_type")})
    config._attn_implementation = "sdpa"
    with open(args.methods) as f:
        methods = {k: v for k, v in json.load(f).items() if isinstance(v, dict)}
    only = [m for m in args.only.split(",") if m]
    versions = {"torch": torch.__version__, "peft": peft.__version__,
                "transformers": transformers.__version__,
                "device": torch.cuda.get_device_name(0)}
    print(json.dumps({"versions": versions}), flush=True)
    t0 = time.perf_counter()
    base = make_base(config)
    print(f"hf_peft_bench: base model of {args.config} built in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr, flush=True)
    for track in args.tracks.split(","):
        for method, settings in methods.items():
            if only and method not in only:
                continue
            r, base = run(method, settings, track, args, config, base)
            if r is not None:
                print(json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
