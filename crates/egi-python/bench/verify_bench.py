"""Throughput of the verifier from Python against the `egi verify` command, same pairs, same
run: MATH-500 and GSM8K solutions against their own and the next problem's answers (the
pairs of tests/conftest.py), alternated `--reps` times; prints a table of medians.

    python crates/egi-python/bench/verify_bench.py [--reps 5] [--copies 4]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def pairs(egi_cmd, tmp):
    out = []
    for name in ("math500", "gsm8k"):
        f = os.path.join(tmp, name + ".jsonl")
        subprocess.run([egi_cmd, "data", "export", name, "--out", f], check=True, capture_output=True)
        recs = [json.loads(l) for l in open(f) if l.strip()]
        if name == "math500":
            sols, golds = [r["solution"] for r in recs], [r["answer"] for r in recs]
        else:
            sols, golds = [r["answer"] for r in recs], [r["answer"].split("####")[-1].strip() for r in recs]
        for i, s in enumerate(sols):
            out += [(s, golds[i]), (s, golds[(i + 1) % len(golds)])]
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--copies", type=int, default=1, help="repeat the pair list this many times")
    a = p.parse_args()
    import egi

    egi_cmd = shutil.which("egi", path=os.path.dirname(sys.executable)) or shutil.which("egi")
    tmp = tempfile.mkdtemp()
    ps = pairs(egi_cmd, tmp) * a.copies
    answers, golds = [x for x, _ in ps], [g for _, g in ps]
    inp = os.path.join(tmp, "pairs.jsonl")
    with open(inp, "w") as f:
        for x, g in ps:
            f.write(json.dumps({"answer": x, "gold": g}) + "\n")
    runs = {
        "egi.verify_many (all cores, GIL released)": lambda: egi.verify_many(answers, golds),
        "egi.correct_many (booleans only)": lambda: egi.correct_many(answers, golds),
        "egi.verify in a Python loop (one core)": lambda: [egi.verify(x, g) for x, g in ps],
        "egi verify --input (the command, one core)": lambda: subprocess.run(
            [egi_cmd, "verify", "--input", inp, "--out", os.path.join(tmp, "out.jsonl")], check=True, capture_output=True
        ),
    }
    times = {k: [] for k in runs}
    for _ in range(a.reps):
        for k, f in runs.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    print(f"{len(ps)} pairs, {a.reps} alternated runs, {os.cpu_count()} cores; medians")
    print(f"| {'path':<45} | seconds | pairs/s |")
    print(f"|{'-' * 47}|---------|---------|")
    for k, t in times.items():
        m = statistics.median(t)
        print(f"| {k:<45} | {m:7.3f} | {len(ps) / m:7.0f} |")


if __name__ == "__main__":
    main()
