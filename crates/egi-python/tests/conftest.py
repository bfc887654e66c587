"""Shared fixtures: the `egi` command this package installed, and answer/gold pairs built from
the benchmarks bundled with egi (`egi data export`)."""

import json
import os
import shutil
import subprocess
import sys

import pytest


@pytest.fixture(scope="session")
def egi_cmd():
    # The environment's scripts folder, beside its python, whether or not it is activated.
    exe = shutil.which("egi", path=os.path.dirname(sys.executable))
    assert exe, f"the package installs the `egi` command into {os.path.dirname(sys.executable)}"
    return exe


def _export(egi_cmd, name, tmp):
    out = tmp / f"{name}.jsonl"
    subprocess.run([egi_cmd, "data", "export", name, "--out", str(out)], check=True, capture_output=True)
    return [json.loads(l) for l in out.read_text().splitlines() if l.strip()]


@pytest.fixture(scope="session")
def pairs(egi_cmd, tmp_path_factory):
    """(answer, gold) pairs: MATH-500 solutions against their own answers and against the next
    problem's (mostly wrong), GSM8K solutions likewise, and a few hand-written styles."""
    tmp = tmp_path_factory.mktemp("data")
    math = _export(egi_cmd, "math500", tmp)
    gsm = _export(egi_cmd, "gsm8k", tmp)[:300]
    out = []
    for recs, sol, gold in ((math, "solution", "answer"), (gsm, "answer", None)):
        golds = [r[gold] if gold else r["answer"].split("####")[-1].strip() for r in recs]
        for i, r in enumerate(recs):
            out.append((r[sol], golds[i]))
            out.append((r[sol], golds[(i + 1) % len(recs)]))
    out += [
        ("so x = 3", "3"),
        ("The answer is \\boxed{\\frac{1}{2}}", "0.5"),
        ("<think>maybe 4</think> The answer is 5.", "5"),
        ("no number here", "7"),
        ("\\boxed{3}", "\\frac{"),
        ("\\boxed{}", "5"),
        ("", ""),
    ]
    return out
