#!/usr/bin/env python3
"""Training throughput and peak memory of Hugging Face PEFT + transformers, the baseline
that bench/gpu/run.sh sets sweep-train against. Same model (random weights), same adapter
settings (methods.json), same batch, sequence length, dtype and optimizer as sweep-train.
Prints one JSON object per (method, track) on stdout."""
import argparse
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


def run(method, settings, track, args, config):
    cfg = peft_config(settings, TRACKS[track])
    if cfg is None:
        return None
    torch.manual_seed(0)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    result = {"method": settings["method"], "method_name": method, "track": track, "impl": "hf_peft",
              "config": args.config, "batch": args.batch, "seq": args.seq, "steps": args.steps,
              "warmup": args.warmup}
    try:
        with torch.device("cuda"):
            model = transformers.LlamaForCausalLM(config).to(torch.bfloat16)
        model.config.use_cache = False
        model = peft.get_peft_model(model, cfg)
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
    return result


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
    config = transformers.LlamaConfig(**{k: v for k, v in cfg_json.items() if k != "architectures"})
    config._attn_implementation = "sdpa"
    with open(args.methods) as f:
        methods = {k: v for k, v in json.load(f).items() if isinstance(v, dict)}
    only = [m for m in args.only.split(",") if m]
    versions = {"torch": torch.__version__, "peft": peft.__version__,
                "transformers": transformers.__version__,
                "device": torch.cuda.get_device_name(0)}
    print(json.dumps({"versions": versions}), flush=True)
    for track in args.tracks.split(","):
        for method, settings in methods.items():
            if only and method not in only:
                continue
            r = run(method, settings, track, args, config)
            if r is not None:
                print(json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
