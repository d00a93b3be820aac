#!/usr/bin/env python3
"""A repeated `lightchain verify` from the command line, with the verifying key derived every
time (LIGHTCHAIN_VK_CACHE=off) and with the key stored by an earlier derivation, beside EZKL's
verify (its Python call, reading vk.key from disk) measured in the same run.

Usage: benches/verify_cached.py LIGHTCHAIN MODEL_DIR... [--reps N] [--python EZKL_PYTHON]

Each MODEL_DIR holds network.onnx or model.onnx and input.json. lightchain proves once (which
stores the key), then verifies --reps times each way; the table gives medians in seconds of the
whole command (process start, parameters, program, key, verification). Prints a Markdown table.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
EZKL = os.path.join(HERE, "..", "..", "shared", "peers", "ezkl", "prove.py")


def model_file(d):
    for name in ("network.onnx", "model.onnx"):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    sys.exit(f"{d}: no network.onnx or model.onnx")


def timed(cmd, env):
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return dt, out.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lightchain")
    ap.add_argument("models", nargs="+")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--python", help="the EZKL virtual environment's python (skip EZKL without)")
    a = ap.parse_args()
    print("| model | k | verify s, key derived | verify s, key stored | EZKL verify s | stored / EZKL |")
    print("|---|---|---|---|---|---|")
    for d in a.models:
        name = os.path.basename(os.path.normpath(d))
        onnx, inp = model_file(d), os.path.join(d, "input.json")
        with tempfile.TemporaryDirectory() as tmp:
            proof = os.path.join(tmp, "proof.json")
            env = dict(os.environ)
            timed([a.lightchain, "prove", onnx, "-i", inp, "--calibrate", inp, "-o", proof], env)
            cmd = [a.lightchain, "verify", onnx, "--proof", proof, "--calibrate", inp, "--json"]
            off = dict(env, LIGHTCHAIN_VK_CACHE="off")
            derived = statistics.median(timed(cmd, off)[0] for _ in range(a.reps))
            runs = [timed(cmd, env) for _ in range(a.reps)]
            report = json.loads(runs[-1][1])
            assert report["valid"] and report["verifying_keys_cached"] == report["segments"], report
            stored = statistics.median(r[0] for r in runs)
            ezkl = None
            if a.python:
                out = subprocess.run([a.python, EZKL, d], capture_output=True, text=True)
                if out.returncode == 0:
                    ezkl = json.loads(out.stdout.strip().splitlines()[-1])["seconds"]["verify"]
        e = f"{ezkl:.3f}" if ezkl is not None else "–"
        ratio = f"{stored / ezkl:.2f}" if ezkl else "–"
        print(f"| {name} | {report['k']} | {derived:.3f} | {stored:.3f} | {e} | {ratio} |")


if __name__ == "__main__":
    main()
