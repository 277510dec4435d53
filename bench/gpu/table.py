#!/usr/bin/env python3
"""Turns bench/gpu/run.sh's results.jsonl into the Markdown tables of docs/benchmarks.md:
sweep-train against HF PEFT per method and track at the 1.1B shape and at each 7B shape, the
ratios, MFU, and every goal checked with its figures ("met" / "NOT met by X").
Usage: table.py RESULTS.jsonl"""
import json
import os
import sys

GB = 1e9
PEFT_METHODS = {"lora", "dora", "oft", "boft", "ia3"}
METHOD_ORDER = ["lora", "dora", "pre_diag", "sora", "oft", "boft", "boft_f1", "ia3", "jora", "jora_none", "jora_update5"]
LABELS = {"lora": "LoRA", "dora": "DoRA", "pre_diag": "Pre-Diag", "sora": "SORA", "oft": "OFT",
          "boft": "BOFT", "boft_f1": "BOFT, 1 factor", "ia3": "IA3", "jora": "JORA (topk_ema every 50, the recipe)",
          "jora_none": "JORA (selection none)", "jora_update5": "JORA (topk_ema every 5)"}
SHAPES_7B = {"llama-2-7b": "Llama-2-7B shape (32 layers, hidden 4096, MLP 11008, 32 KV heads)",
             "mistral-7b": "Mistral-7B shape (32 layers, hidden 4096, MLP 14336, 8 KV heads, vocab 32768)"}


def load(path):
    env, rows = {}, []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if obj.get("type") == "env":
                env = obj
            elif "impl" in obj:
                rows.append(obj)
    return env, rows


def model_of(row):
    return os.path.splitext(os.path.basename(row.get("config", "")))[0]


def fmt_rate(r):
    if r is None:
        return "—"
    if r.get("oom"):
        return "OOM"
    if "error" in r:
        return "failed"
    return f"{r['tokens_per_s']:,.0f}"


def fmt_mem(r):
    if r is None or r.get("peak_mem_bytes") is None or "error" in r:
        return "—"
    prefix = "> " if r.get("oom") else ""
    return f"{prefix}{r['peak_mem_bytes'] / GB:.1f}"


def ok(r):
    return r is not None and "tokens_per_s" in r and not r.get("oom")


def graph_of(r):
    if not ok(r) or "cuda_graph" not in r:
        return "—"
    return "yes" if r["cuda_graph"] else "no"


def mfu(r, flops, peak):
    if not ok(r) or not flops or not peak:
        return "—"
    return f"{100 * r['tokens_per_s'] * flops / (peak * 1e12):.1f}%"


def rows_table(w, by, model, flops, peak):
    """One shape's table: every method on both tracks, both sides."""
    w("| method | track | sweep-train tok/s | HF PEFT tok/s | speed ratio | sweep-train peak GB "
      "| HF PEFT peak GB | memory ratio | sweep-train MFU | HF PEFT MFU | trainable params (ours / PEFT) "
      "| graph |")
    w("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    for track in ["A", "B"]:
        for m in METHOD_ORDER:
            ours = by.get((model, "sweep_train", m, track))
            hf = by.get((model, "hf_peft", "boft" if m == "boft_f1" else m, track))
            if (ours is None and hf is None) or (ours is None and m == "boft_f1"):
                continue
            speed = mem = "—"
            if ok(ours) and ok(hf):
                speed = f"{ours['tokens_per_s'] / hf['tokens_per_s']:.2f}x"
                mem = f"{ours['peak_mem_bytes'] / hf['peak_mem_bytes']:.2f}"
            label = LABELS.get(m, m)
            if m == "boft_f1":
                label += " (vs PEFT's BOFT)"
            elif hf is not None and hf.get("boft_factors") is not None:
                label += f" (PEFT built {hf['boft_factors']} factor{'s' if hf['boft_factors'] != 1 else ''})"
            if hf is None:
                label += " (PEFT run missing)" if m in PEFT_METHODS else " (not in PEFT)"
            tp = f"{ours.get('trainable_params', '—') if ours else '—'} / " \
                 f"{hf.get('trainable_params', '—') if hf else '—'}"
            w(f"| {label} | {track} | {fmt_rate(ours)} | {fmt_rate(hf)} | {speed} | {fmt_mem(ours)} "
              f"| {fmt_mem(hf)} | {mem} | {mfu(ours, flops, peak)} | {mfu(hf, flops, peak)} | {tp} "
              f"| {graph_of(ours)} |")


def ratio_goal(check, name, value, target, unit="x"):
    """A goal `value >= target`; value None: not measured."""
    if value is None:
        check(name, False, "not measured: a side did not run")
    elif unit == "%":
        check(name, value >= target, f"{100 * value:.1f}% against {100 * target:.0f}%" if value >= target
              else f"by {100 * (target - value):.1f} points: {100 * value:.1f}% against {100 * target:.0f}%")
    else:
        check(name, value >= target, f"{value:.2f}x against {target:.2f}x" if value >= target
              else f"by {target - value:.2f}x: {value:.2f}x against {target:.2f}x")


def issue18_goals(w, check, by, peak):
    """The goals of issue 18 (7B speed and memory, SORA at 1.1B, JORA topk_ema)."""
    def rate(model, impl, m, track):
        r = by.get((model, impl, m, track))
        return r["tokens_per_s"] if ok(r) else None

    def over(a, b):
        return a / b if a is not None and b else None

    for model in SHAPES_7B:
        if not any(k[0] == model for k in by):
            continue
        name = SHAPES_7B[model].split(" shape")[0]
        ours_lora = by.get((model, "sweep_train", "lora", "A"))
        ratio_goal(check, f"{name} LoRA A at least 1.5x PEFT's tokens/s",
                   over(rate(model, "sweep_train", "lora", "A"), rate(model, "hf_peft", "lora", "A")), 1.5)
        flops = ours_lora.get("flops_per_token") if ok(ours_lora) else None
        ratio_goal(check, f"{name} LoRA A at least 60% MFU",
                   ours_lora["tokens_per_s"] * flops / (peak * 1e12) if flops and peak else None, 0.60, "%")
        for track in ["A", "B"]:
            ratio_goal(check, f"{name} DoRA {track} at least 1.5x PEFT's tokens/s",
                       over(rate(model, "sweep_train", "dora", track), rate(model, "hf_peft", "dora", track)), 1.5)
        for m in ["sora", "pre_diag"]:
            for track in ["A", "B"]:
                ratio_goal(check, f"{name} {LABELS[m]} {track} at least 1.5x PEFT's DoRA",
                           over(rate(model, "sweep_train", m, track), rate(model, "hf_peft", "dora", track)), 1.5)
        # Memory: each of our rows against PEFT's row of the same method, or (methods PEFT does
        # not have) against PEFT's DoRA on the same track.
        worst = None
        for track in ["A", "B"]:
            for m in METHOD_ORDER:
                o = by.get((model, "sweep_train", m, track))
                h = by.get((model, "hf_peft", m if m in PEFT_METHODS else "dora", track))
                if not (ok(o) and ok(h)):
                    continue
                excess = o["peak_mem_bytes"] - h["peak_mem_bytes"]
                if worst is None or excess > worst[0]:
                    worst = (excess, m, track, o["peak_mem_bytes"], h["peak_mem_bytes"])
        if worst is None:
            check(f"{name}: no method above PEFT's peak memory", False, "not measured: a side did not run")
        else:
            excess, m, track, mine, theirs = worst
            where = f"{LABELS.get(m, m)} {track}: {mine / GB:.1f} GB against PEFT's {theirs / GB:.1f} GB"
            check(f"{name}: no method above PEFT's peak memory", excess <= 0,
                  f"closest {where}" if excess <= 0 else f"by {excess / GB:.1f} GB: {where}")
    small = "llama-1.1b"
    ratio_goal(check, "1.1B SORA A at least 1.6x PEFT's DoRA",
               over(rate(small, "sweep_train", "sora", "A"), rate(small, "hf_peft", "dora", "A")), 1.6)
    for model in [small] + list(SHAPES_7B):
        if not any(k[0] == model for k in by):
            continue
        for track in ["A", "B"]:
            ratio_goal(check, f"{model} JORA (recipe: topk_ema) {track} at least 0.8x our LoRA's tokens/s",
                       over(rate(model, "sweep_train", "jora", track),
                            rate(model, "sweep_train", "lora", track)), 0.8)


def main():
    env, rows = load(sys.argv[1])
    by = {}
    for r in rows:
        by[(model_of(r), r["impl"], r.get("method_name", r.get("method")), r["track"])] = r
    ours_any = next((r for r in rows if r["impl"] == "sweep_train" and ok(r)), {})
    peak = ours_any.get("peak_tflops")
    out = []
    w = out.append
    goals = []
    steps = ours_any.get("steps", "?")
    warmup = ours_any.get("warmup", "?")
    w(f"Run of {env.get('date', '?')} on {env.get('gpu', '?')}: torch {env.get('torch', '?')} "
      f"(CUDA {env.get('cuda', '?')}), peft {env.get('peft', '?')}, transformers "
      f"{env.get('transformers', '?')}; sweep-train built against LibTorch "
      f"{env.get('sweep_train_torch', '?')}. Command: `{env.get('command', 'bench/gpu/run.sh')}` "
      f"({warmup} warm-up + {steps} timed steps per configuration, each in its own process).")
    w("")
    model = "llama-1.1b"
    flops = next((r.get("flops_per_token") for r in rows
                  if model_of(r) == model and r.get("flops_per_token")), None)
    w(f"Llama 1.1B shape ({model}.json), random weights, batch 8 x 1024 tokens, bf16, AdamW "
      f"(fused where available), gradient clipping 1.0. Tokens/s of training (forward, backward, "
      f"clip, optimizer step); peak = CUDA caching allocator's peak allocated bytes (GB = 1e9); "
      f"MFU = tokens/s x {flops / 1e9 if flops else 0:.2f} GFLOP/token / {peak} TFLOP/s "
      f"(datasheet dense bf16 peak). Ratios: sweep-train / HF PEFT. Graph: whether sweep-train "
      f"replayed each step's forward and backward as a CUDA graph (methods whose layers change "
      f"shape between steps run eagerly); HF PEFT runs eagerly, as PEFT does.")
    w("")
    rows_table(w, by, model, flops, peak)
    w("")
    w("Goals, checked on these figures:")
    w("")

    def check(name, passed, detail):
        goals.append((name, passed))
        w(f"- {'met' if passed else 'NOT met'}: {name} — {detail}")

    for track in ["A", "B"]:
        for m in ["lora", "dora", "oft", "boft", "ia3"]:
            o = by.get((model, "sweep_train", m, track))
            h = by.get((model, "hf_peft", m, track))
            if not (ok(o) and ok(h)):
                check(f"{LABELS[m]} {track} at least as fast as PEFT with no more memory", False,
                      "not measured: a side did not run")
                continue
            s = o["tokens_per_s"] / h["tokens_per_s"]
            mr = o["peak_mem_bytes"] / h["peak_mem_bytes"]
            check(f"{LABELS[m]} {track} at least as fast as PEFT with no more memory", s >= 1 and mr <= 1,
                  f"{s:.2f}x the tokens/s, {mr:.2f}x the memory")
    for track in ["A", "B"]:
        for m in ["dora", "boft"]:
            o = by.get((model, "sweep_train", m, track))
            h = by.get((model, "hf_peft", m, track))
            if ok(o) and ok(h):
                s = o["tokens_per_s"] / h["tokens_per_s"]
                check(f"{LABELS[m]} {track} at least 1.5x PEFT's tokens/s", s >= 1.5, f"{s:.2f}x")
        h = by.get((model, "hf_peft", "dora", track))
        for m in ["sora", "pre_diag"]:
            o = by.get((model, "sweep_train", m, track))
            if ok(o) and ok(h):
                s = o["tokens_per_s"] / h["tokens_per_s"]
                check(f"{LABELS[m]} {track} at least 1.5x PEFT's DoRA", s >= 1.5, f"{s:.2f}x")

    for big, title in SHAPES_7B.items():
        if not any(model_of(r) == big for r in rows):
            continue
        big_flops = next((r.get("flops_per_token") for r in rows
                          if model_of(r) == big and r.get("flops_per_token")), None)
        ours7 = next((r for r in rows if model_of(r) == big and r["impl"] == "sweep_train" and ok(r)), {})
        w("")
        w(f"{title}, random weights, batch 4 x 1024, bf16, same run ({ours7.get('warmup', '?')} warm-up + "
          f"{ours7.get('steps', '?')} timed steps); MFU = tokens/s x "
          f"{big_flops / 1e9 if big_flops else 0:.2f} GFLOP/token / {peak} TFLOP/s:")
        w("")
        rows_table(w, by, big, big_flops, peak)
    o = by.get(("llama-2-7b", "sweep_train", "dora", "B"))
    if ok(o):
        check("Llama-2-7B DoRA track B fits in 80 GB", o["peak_mem_bytes"] < 80e9,
              f"sweep-train peak {o['peak_mem_bytes'] / GB:.1f} GB")
    w("")
    w("Goals of issue 18, checked on these figures:")
    w("")
    issue18_goals(w, check, by, peak)
    failed = [r for r in rows if "error" in r]
    if failed:
        w("")
        w("Configurations that did not run: " + ", ".join(
            f"{r['impl']} {r.get('method_name')} {r['track']} ({r['error']})" for r in failed))
    print("\n".join(out))


if __name__ == "__main__":
    main()
