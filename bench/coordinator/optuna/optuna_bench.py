#!/usr/bin/python3
"""Optuna's trial throughput with its SQLite storage, for the comparison with sweepd
(docs/benchmarks.md): W worker processes share one study on an SQLite file (Optuna's
RDBStorage), the GridSampler hands out a grid of N points, and every trial reports R
intermediate values (trial.report) and returns at once -- the shape of coordinator_bench's
jobs with R metric points. Prints one line of JSON: trials, seconds, trials per second.
Debian's python3-optuna (3.1). Usage: optuna_bench.py [--trials N] [--workers W] [--reports R]
"""
import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time

import optuna


def objective(trial, reports):
    x = trial.suggest_int("x", 0, 1 << 30)
    for step in range(reports):
        trial.report(float(step + x), step)
    return float(x)


def work(url, trials, reports):
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    study = optuna.load_study(study_name="bench", storage=storage,
                              sampler=optuna.samplers.GridSampler({"x": list(range(trials))}))
    # Each process stops when the grid is exhausted (GridSampler stops the study).
    study.optimize(lambda t: objective(t, reports), n_trials=trials)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--reports", type=int, default=20)
    args = parser.parse_args()
    if min(args.trials, args.workers, args.reports) < 1:
        sys.exit("optuna_bench: --trials, --workers and --reports must be at least 1")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="optuna-bench-") as tmp:
        url = "sqlite:///" + os.path.join(tmp, "optuna.db")
        optuna.create_study(study_name="bench", storage=url)
        procs = [multiprocessing.Process(target=work, args=(url, args.trials, args.reports))
                 for _ in range(args.workers)]
        start = time.monotonic()
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        seconds = time.monotonic() - start
        study = optuna.load_study(study_name="bench", storage=url)
        complete = [t for t in study.get_trials(deepcopy=False)
                    if t.state == optuna.trial.TrialState.COMPLETE]
        reported = sum(len(t.intermediate_values) for t in complete)
    print(json.dumps({"trials": len(complete), "seconds": round(seconds, 2),
                      "trials_per_s": round(len(complete) / seconds, 2),
                      "intermediate_values": reported, "workers": args.workers}))
    if any(p.exitcode != 0 for p in procs):
        sys.exit("optuna_bench: a worker process failed")


if __name__ == "__main__":
    main()
