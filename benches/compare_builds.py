#!/usr/bin/env python3
"""Compare two lightchain builds on the proving benchmark, model by model.

    benches/compare_builds.py OLD_BINARY NEW_BINARY [--reps 3] [--skip lenet_5] [MODEL_DIR ...]

Runs `BINARY bench-one DIR` for both builds alternately (old, new, new, old, ...), so that load
drifts hit both alike, and prints per model: k and rows of each (they must match for a change
that should not touch circuits), the median prove seconds of each and their ratio, and the
geometric mean of the ratios. Default models: fixtures/* and fixtures/ezkl/* with an input.json.
"""
import argparse
import glob
import json
import math
import os
import statistics
import subprocess
import sys


def run(binary, model):
    out = subprocess.run([binary, "bench-one", model], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{binary} bench-one {model} failed: {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("models", nargs="*")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--skip", action="append", default=[])
    a = ap.parse_args()
    models = a.models or sorted(
        d for d in glob.glob("fixtures/*") + glob.glob("fixtures/ezkl/*")
        if os.path.exists(os.path.join(d, "input.json"))
    )
    models = [m for m in models if os.path.basename(m) not in a.skip]
    ratios, mismatches = [], []
    print("| model | k old/new | rows old/new | prove s old (median) | prove s new (median) | new/old |")
    print("|---|---|---|---|---|---|")
    for m in models:
        figs = {"old": [], "new": []}
        for r in range(a.reps):
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            for which in order:
                figs[which].append(run(getattr(a, which), m))
        o, n = figs["old"][0], figs["new"][0]
        if (o["k"], o["rows"]) != (n["k"], n["rows"]):
            mismatches.append(os.path.basename(m))
        po = statistics.median(f["prove_s"] for f in figs["old"])
        pn = statistics.median(f["prove_s"] for f in figs["new"])
        ratios.append(pn / po)
        print(f"| {os.path.basename(m)} | {o['k']}/{n['k']} | {o['rows']}/{n['rows']} | "
              f"{po:.3f} | {pn:.3f} | {pn / po:.3f} |", flush=True)
    g = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(f"\n{len(ratios)} models, {a.reps} runs each: prove new/old geometric mean {g:.3f}, "
          f"min {min(ratios):.3f}, max {max(ratios):.3f}; k/rows differ on: {mismatches or 'none'}")


if __name__ == "__main__":
    main()
