#!/usr/bin/env python3
"""Where the test suite's time goes, and a budget per test binary.

    tools/test_times.py binaries LOG [--budget S]   # per test binary, from `cargo test` output
    tools/test_times.py slowest [--top N]           # per test, by running cargo-nextest

`binaries` reads what `cargo test --release --workspace` printed (each binary's "Running ..."
line and its "test result: ... finished in S s"), prints the binaries slowest first with the
share of the total, and exits 1 when one of them ran longer than --budget seconds (wall time
on the machine that ran it; .ci/run passes its budget, see docs/performance.md "CI budget").

`slowest` runs the whole suite under cargo-nextest, one test at a time so that each time is
the test's own (`cargo install cargo-nextest --locked` if it is missing), and prints the N
slowest tests (default 10) from nextest's JUnit report. Extra arguments after `--` go to
nextest, e.g. `-- -p egi` for one crate.
"""

import argparse
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

RUNNING = re.compile(r"^\s*Running (?:unittests )?(\S+) \((?:.*/)?deps/([A-Za-z0-9_]+)-[0-9a-f]+\)")
DOCTESTS = re.compile(r"^\s*Doc-tests (\S+)")
RESULT = re.compile(r"^test result: (\w+)\. (\d+) passed; (\d+) failed; (\d+) ignored.*finished in ([0-9.]+)s")


def parse_binaries(lines):
    """[(name, tests passed, seconds)] in the order cargo ran them."""
    out, current = [], None
    for line in lines:
        m = RUNNING.match(line)
        if m:
            src, stem = m.groups()
            current = f"{stem} ({src})"
            continue
        m = DOCTESTS.match(line)
        if m:
            current = f"{m.group(1)} (doc-tests)"
            continue
        m = RESULT.match(line)
        if m and current is not None:
            out.append((current, int(m.group(2)), float(m.group(5))))
            current = None
    return out


def table(rows, header):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    fmt = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    print(fmt(header))
    for r in rows:
        print(fmt(r))


def cmd_binaries(args):
    with open(args.log, errors="replace") as f:
        rows = parse_binaries(f)
    if not rows:
        sys.exit(f"{args.log}: no 'test result' lines; is it the output of cargo test?")
    total = sum(s for _, _, s in rows)
    rows.sort(key=lambda r: -r[2])
    print(f"test binaries: {len(rows)}, {total:.0f} s of tests in all (build not included)")
    table(
        [(n, t, f"{s:.1f}", f"{100 * s / total:.0f}%") for n, t, s in rows[: args.top]],
        ("binary", "tests", "seconds", "share"),
    )
    over = [(n, s) for n, _, s in rows if s > args.budget]
    if over:
        for n, s in over:
            print(f"over budget: {n} took {s:.0f} s, the budget is {args.budget:.0f} s per test binary")
        print("make it cheaper (docs/performance.md 'CI budget' says how) or split it")
        sys.exit(1)


def cmd_slowest(args):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    probe = subprocess.run(["cargo", "nextest", "--version"], capture_output=True, cwd=root)
    if probe.returncode != 0:
        sys.exit("needs cargo-nextest: cargo install cargo-nextest --locked")
    cmd = ["cargo", "nextest", "run", "--release", "--workspace", "--profile", "times",
           "--test-threads", "1", "--no-fail-fast"] + args.nextest
    print("$", " ".join(cmd), flush=True)
    run = subprocess.run(cmd, cwd=root)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
    junit = os.path.join(target, "nextest", "times", "junit.xml")
    if not os.path.exists(junit):
        sys.exit(f"{junit}: nextest wrote no report")
    tests = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        tests.append((case.get("classname", ""), case.get("name", ""), float(case.get("time", 0)), failed))
    total = sum(t[2] for t in tests)
    tests.sort(key=lambda t: -t[2])
    print(f"\n{len(tests)} tests, {total:.0f} s one at a time; the {args.top} slowest:")
    table(
        [(f"{c} {n}" + (" (FAILED)" if bad else ""), f"{s:.1f}", f"{100 * s / total:.0f}%")
         for c, n, s, bad in tests[: args.top]],
        ("test", "seconds", "share"),
    )
    sys.exit(run.returncode)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("binaries", help="per test binary, from a cargo test log")
    b.add_argument("log")
    b.add_argument("--budget", type=float, default=float("inf"), help="seconds allowed per test binary")
    b.add_argument("--top", type=int, default=1000)
    s = sub.add_parser("slowest", help="per test, by running cargo-nextest")
    s.add_argument("--top", type=int, default=10)
    s.add_argument("nextest", nargs="*", help="after --: arguments for cargo nextest run")
    args = p.parse_args()
    {"binaries": cmd_binaries, "slowest": cmd_slowest}[args.cmd](args)


if __name__ == "__main__":
    main()
