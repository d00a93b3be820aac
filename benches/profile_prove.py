#!/usr/bin/env python3
"""Where proving time goes: runs `lightchain prove` on each model under `perf record` (CPU
samples, no call graphs: halo2's work runs on rayon threads whose stacks do not unwind to its
phases) and sorts the samples into families by their leaf function:

  msm      multi-scalar multiplications: curve additions and doublings, Booth buckets (commitments
           to advice, fixed, permutation, lookup and quotient polynomials, and the IPA opening)
  fft      butterflies and domain changes (to and from the extended domain)
  field    field multiplications and the expression evaluator: the quotient's gate, lookup and
           permutation terms over the extended domain, grand products, polynomial evaluation
  kernel   page faults, allocation, system calls
  other    everything else (witness generation, layout, hashing, parameter loading)

It also prints the circuit's k and lightchain's own split of the wall time into keygen and
prove (the samples cover both, and the parameter loading). Usage, from the repository root with a release build:

  benches/profile_prove.py target/release/lightchain fixtures/ezkl/1l_softmax fixtures/digits_cnn

Needs `perf` (linux-perf); prints a Markdown table.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

FAMILIES = [
    ("msm", re.compile(r"pasta_curves::curves::(Eq|Ep)|EqAffine|EpAffine|Booth|booth_digit|multiexp|subtle::black_box")),
    ("fft", re.compile(r"butterfly|best_fft|fft|coeff_to_extended|extended_to_coeff|lagrange_to_coeff|distribute_powers")),
    ("field", re.compile(r"fields::f[pq]::|Evaluator|evaluate|eval_polynomial|batch_invert|parallelize|rotate")),
    ("kernel", re.compile(r"^\[k\]")),
]


def family(sym):
    for name, rx in FAMILIES:
        if rx.search(sym):
            return name
    return "other"


def model_file(d):
    for f in ("model.onnx", "network.onnx"):
        p = os.path.join(d, f)
        if os.path.exists(p):
            return p
    raise SystemExit(f"{d}: no model.onnx or network.onnx")


def profile(binary, d):
    model, inp = model_file(d), os.path.join(d, "input.json")
    with tempfile.TemporaryDirectory() as tmp:
        data, proof = os.path.join(tmp, "perf.data"), os.path.join(tmp, "proof.json")
        run = subprocess.run(
            ["perf", "record", "-F", "999", "-o", data, "--", binary, "prove", model,
             "--input", inp, "--out", proof, "--json"],
            capture_output=True, text=True, check=True)
        report = json.loads(run.stdout)
        text = subprocess.run(
            ["perf", "report", "-i", data, "--no-children", "--sort", "symbol", "--stdio"],
            capture_output=True, text=True, check=True).stdout
    shares = {name: 0.0 for name, _ in FAMILIES}
    shares["other"] = 0.0
    for line in text.splitlines():
        m = re.match(r"\s+([0-9.]+)%\s+(\[[.k]\])\s+(.*)", line)
        if m:
            pct, kind, sym = float(m.group(1)), m.group(2), m.group(3)
            shares[family(f"{kind} {sym}" if kind == "[k]" else sym)] += pct
    return report, shares


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    binary, dirs = sys.argv[1], sys.argv[2:]
    print("| model | k | keygen s | prove s | msm | fft | field | kernel | other |")
    print("|---|---|---|---|---|---|---|---|---|")
    for d in dirs:
        report, s = profile(binary, d)
        t = report["seconds"]
        print(f"| {os.path.basename(d.rstrip('/'))} | {report['k']} "
              f"| {t['keygen']:.2f} | {t['prove']:.2f} "
              + " ".join(f"| {s[f]:.0f}%" for f in ("msm", "fft", "field", "kernel", "other")) + " |")


if __name__ == "__main__":
    main()
