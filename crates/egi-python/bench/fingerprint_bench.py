"""The fingerprint from Python against the `egi fingerprint` command on the same texts, same
run, alternated: both timed from before the model's load to the end of the measurement (the
command's summary.json `wall_seconds`, which stops before its plots; Python's clock around
`egi.Model(...)` and `.fingerprint(...)`). Prints a table of medians and the ratio.

    python crates/egi-python/bench/fingerprint_bench.py [--reps 3] [--texts 6]
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

TEXT = (
    "Tom has 3 bags with 4 apples each.\nSo he has 3 * 4 = 12 apples.\nHe gives away 5 apples.\n"
    "12 - 5 = 7.\nThe answer is \\boxed{7}."
)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--texts", type=int, default=6)
    a = p.parse_args()
    import egi

    egi_cmd = shutil.which("egi", path=os.path.dirname(sys.executable)) or shutil.which("egi")
    tmp = tempfile.mkdtemp()
    prompts = [f"Question {i}: how many apples are left?" for i in range(a.texts)]
    responses = [TEXT] * a.texts
    inp = os.path.join(tmp, "texts.jsonl")
    with open(inp, "w") as f:
        for i, (q, r) in enumerate(zip(prompts, responses)):
            f.write(json.dumps({"id": str(i), "prompt": q, "response": r}) + "\n")
    py, cli = [], []
    for k in range(a.reps):
        out = os.path.join(tmp, f"fp{k}")
        subprocess.run([egi_cmd, "fingerprint", "--input", inp, "--out", out, "--bootstrap", "200"], check=True, capture_output=True)
        cli.append(json.load(open(os.path.join(out, "summary.json")))["wall_seconds"])
        t0 = time.perf_counter()
        egi.Model("default").fingerprint(prompts, responses, bootstrap=200)
        py.append(time.perf_counter() - t0)
    mp, mc = statistics.median(py), statistics.median(cli)
    print(f"{a.texts} texts of {len(TEXT)} characters, {a.reps} alternated runs, medians")
    print("| path | seconds |\n|---|---|")
    print(f"| egi fingerprint (the command; load + measure) | {mc:.2f} |")
    print(f"| egi.Model(...).fingerprint(...) (load + measure) | {mp:.2f} |")
    print(f"Python / command: {mp / mc:.3f}")


if __name__ == "__main__":
    main()
