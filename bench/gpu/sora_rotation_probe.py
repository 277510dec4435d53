#!/usr/bin/env python3
"""Where SORA's rotation spends its time on a GPU: forward + backward of r (I + s_p K) for one
layer's output r [N, d_out] (bf16), timed twice with CUDA events: launched eagerly from Python,
and replayed from a CUDA graph (the GPU's own time, with no host launches in it). The gap
between the two is host launch overhead; the replayed time is what the GPU itself needs.
Prints one JSON object per shape. Usage: sora_rotation_probe.py [--tokens 8192] [--rp 4]"""
import argparse
import json

import torch


def rotation(r, c, d, a):
    sp = torch.clamp_max(a / (c.norm() + d.norm() + 1e-6), 1.0)
    flat = r.reshape(-1, c.shape[0])
    rc = flat @ torch.cat([c, d], 1)
    return torch.addmm(flat, rc, (torch.cat([d, -c], 1) * sp).t()).view(r.shape)


def time_ms(fn, iters):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--tokens", type=int, default=8192)
    p.add_argument("--rp", type=int, default=4)
    p.add_argument("--iters", type=int, default=50)
    args = p.parse_args()
    dev, dt = "cuda", torch.bfloat16
    for d_out in (2048, 256, 5632):
        r = torch.randn(args.tokens, d_out, device=dev, dtype=dt, requires_grad=True)
        c = (torch.randn(d_out, args.rp, device=dev, dtype=dt) * 0.02).requires_grad_()
        d = (torch.randn(d_out, args.rp, device=dev, dtype=dt) * 0.02).requires_grad_()
        g = torch.randn(args.tokens, d_out, device=dev, dtype=dt)

        def step():
            out = rotation(r, c, d, 1.0)
            out.backward(g)

        def base():  # what the layer pays without the rotation: the identity's backward copy
            (r * 1.0).backward(g)

        for _ in range(5):
            step()
        eager = time_ms(step, args.iters)
        eager_base = time_ms(base, args.iters)
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        replay = time_ms(graph.replay, args.iters)
        print(json.dumps({"d_out": d_out, "tokens": args.tokens, "r_p": args.rp,
                          "eager_ms": round(eager, 4), "graph_ms": round(replay, 4),
                          "identity_eager_ms": round(eager_base, 4)}), flush=True)


if __name__ == "__main__":
    main()
