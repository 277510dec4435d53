#!/usr/bin/env python3
"""Per-job wall times of a sweep run by deploy/run-sweep.sh, from the workers' spools
(WORKDIR/jobs/<job>/attempt-<n>.metrics.jsonl, docs/worker.md): method, seed, attempt, the final
line's wall_s, load_seconds, tokens_per_s and peak memory, as a Markdown table.
Usage: job_timings.py VAR_DIR   (run-sweep.sh's SWEEPD_VAR)"""
import glob
import json
import os
import sys


def main():
    rows = []
    for spool in sorted(glob.glob(os.path.join(sys.argv[1], "worker*", "jobs", "*", "attempt-*.metrics.jsonl"))):
        start, final, steps = {}, {}, 0
        with open(spool) as f:
            for line in f:
                try:
                    obj = json.loads(json.loads(line)["json"])
                except (ValueError, KeyError):
                    continue
                if obj.get("type") == "start":
                    start = obj
                elif obj.get("type") == "final":
                    final = obj
                elif obj.get("type") == "step":
                    steps = max(steps, obj.get("step", 0))
        job = os.path.basename(os.path.dirname(spool))
        attempt = os.path.basename(spool).split(".")[0].split("-")[1]
        rows.append((start.get("kind", "?"), start.get("method", ""), start.get("seed", ""), job, attempt, steps,
                     final))
    print("| job | kind | method | seed | attempt | steps | wall s | load s | tokens/s | peak GB | outcome |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for kind, method, seed, job, attempt, steps, final in rows:
        def num(key, fmt):
            return format(final[key], fmt) if isinstance(final.get(key), (int, float)) else "—"
        peak = f"{final['peak_mem_bytes'] / 1e9:.1f}" if isinstance(final.get("peak_mem_bytes"), int) else "—"
        print(f"| {job} | {kind} | {method or '—'} | {seed} | {attempt} | {steps} | {num('wall_s', '.1f')} "
              f"| {num('load_seconds', '.1f')} | {num('tokens_per_s', ',.0f')} | {peak} "
              f"| {'final line' if final else 'no final line'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
