#!/usr/bin/env python3
"""Size limits of the non-test source: no function over 150 lines, no file over 800 lines,
devnet/src/lib.rs under 300 lines, fewer than 15 unwrap/expect calls in the devnet's non-test
code. Prints the offenders and exits non-zero if there are any (`--report` lists the largest)."""
import os, re, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = ["aivm", "packager", "profiler", "devnet", "cli", "test-utils"]
FN_LIMIT, FILE_LIMIT, LIB_LIMIT, UNWRAP_LIMIT = 150, 800, 300, 15


def sources():
    for c in CRATES:
        for d, _, files in os.walk(os.path.join(ROOT, c, "src")):
            if "/tests" in d[len(ROOT):] and os.path.basename(d) == "tests" or "/tests/" in d[len(ROOT):]:
                continue
            for f in files:
                if f.endswith(".rs") and f != "tests.rs":
                    yield os.path.join(d, f)


def strip_tests(lines):
    """Drops `#[cfg(test)]` items (a test module at the end of a file)."""
    out, skip, depth = [], False, 0
    for i, l in enumerate(lines):
        if not skip and l.strip() == "#[cfg(test)]":
            skip, depth = True, 0
            started = False
            continue
        if skip:
            depth += l.count("{") - l.count("}")
            if "{" in l:
                started = True
            if started and depth <= 0:
                skip = False
            elif not started and l.rstrip().endswith((";", ",")):
                skip = False
            continue
        out.append((i + 1, l))
    return out


FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")


def functions(numbered):
    fns = []
    for k, (ln, l) in enumerate(numbered):
        m = FN.match(l)
        if not m:
            continue
        depth, started = 0, False
        for j in range(k, len(numbered)):
            t = numbered[j][1]
            # ignore braces in strings and char literals roughly
            t = re.sub(r'"(\\.|[^"\\])*"', '""', t)
            t = re.sub(r"'(\\.|[^'\\])'", "''", t)
            t = t.split("//")[0]
            if not started and ";" in t and "{" not in t:
                break
            depth += t.count("{") - t.count("}")
            if "{" in t:
                started = True
            if started and depth <= 0:
                fns.append((m.group(6), ln, numbered[j][0] - ln + 1))
                break
    return fns


def main():
    report = "--report" in sys.argv
    bad, all_fns, files = [], [], []
    unwraps = 0
    for p in sources():
        rel = os.path.relpath(p, ROOT)
        lines = open(p).read().split("\n")
        numbered = strip_tests(lines)
        n = len(lines) - (1 if lines[-1] == "" else 0)
        files.append((n, rel))
        if n > FILE_LIMIT:
            bad.append(f"{rel}: {n} lines (limit {FILE_LIMIT})")
        if rel == "devnet/src/lib.rs" and n >= LIB_LIMIT:
            bad.append(f"{rel}: {n} lines (limit {LIB_LIMIT})")
        for name, ln, length in functions(numbered):
            all_fns.append((length, f"{rel}:{ln} {name}"))
            if length > FN_LIMIT:
                bad.append(f"{rel}:{ln}: fn {name} is {length} lines (limit {FN_LIMIT})")
        if rel.startswith("devnet/"):
            for ln, l in numbered:
                code = l.split("//")[0]
                unwraps += len(re.findall(r"\.(unwrap|expect)\(", code))
    if unwraps >= UNWRAP_LIMIT:
        bad.append(f"devnet: {unwraps} unwrap/expect calls in non-test code (limit {UNWRAP_LIMIT - 1})")
    if report:
        print("largest functions:")
        for length, what in sorted(all_fns, reverse=True)[:15]:
            print(f"  {length:5} {what}")
        print("largest files:")
        for n, rel in sorted(files, reverse=True)[:10]:
            print(f"  {n:5} {rel}")
        print(f"devnet unwrap/expect: {unwraps}")
    for b in bad:
        print(b)
    sys.exit(1 if bad else 0)


main()
