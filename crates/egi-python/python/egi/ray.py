"""egi on a Ray cluster: a corpus fingerprinted, or a benchmark evaluated, as shards run by Ray
Data workers (one ``egi`` process, so one model, per shard; GPUs through ``num_gpus``), then
merged into the outputs one run over the whole input writes (docs/scale.md).

    import ray, egi.ray
    ray.init()                                          # or ray.init(address="auto")
    summary = egi.ray.fingerprint("texts.jsonl", "fp-out", model="path/to/model", shards=16,
                                  num_gpus=1, options=["--step-mode", "mean-logit"])

Each shard is ``egi fingerprint --shard K/N`` (``egi eval --shard K/N``) into
``OUT/shards/part-K``, run by this Python's ``egi`` (``python -m egi``) on the worker: the input
and OUT must be on a file system every worker sees. A shard is resumable, so a worker that
dies is retried (``max_retries``) and picks up where it stopped; the merge
(``egi fingerprint merge`` / ``egi eval merge``) refuses a missing or unfinished shard, naming
it, and writes nothing. Needs ``ray`` (``pip install "ray[data]"``); not a dependency of egi.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Sequence

__all__ = ["fingerprint", "evaluate", "run_sharded"]


def _egi(args: Sequence[str]) -> None:
    """Runs ``egi ARGS`` with this interpreter's package; its error (one line) becomes ours."""
    p = subprocess.run([sys.executable, "-m", "egi", *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"egi {' '.join(args[:2])}: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else 'failed'}")


def run_sharded(
    command: str,
    args: Sequence[str],
    out: str | os.PathLike,
    *,
    shards: int,
    device: str | None = None,
    num_cpus: float = 1,
    num_gpus: float = 0,
    concurrency: int | None = None,
    max_retries: int = 3,
) -> dict:
    """Runs ``egi COMMAND ARGS --shard K/N --out OUT/shards/part-K`` for K = 1..N as a Ray
    Data pipeline (``num_cpus``/``num_gpus`` per shard, at most ``concurrency`` at once), then
    ``egi COMMAND merge`` of the parts into OUT; returns the merged summary.json."""
    import ray

    if command not in ("fingerprint", "eval"):
        raise ValueError(f"command={command!r}: 'fingerprint' or 'eval'")
    if int(shards) < 1:
        raise ValueError(f"shards={shards}: expected an integer >= 1")
    n = int(shards)
    out = os.path.abspath(os.fspath(out))
    device = device or ("cuda" if num_gpus else "cpu")
    parts = [os.path.join(out, "shards", f"part-{k}") for k in range(1, n + 1)]
    base = [str(a) for a in args]

    def run_one(row: dict[str, Any]) -> dict[str, Any]:
        k = int(row["k"])
        _egi(["--device", device, command, *base, "--shard", f"{k}/{n}", "--out", parts[k - 1]])
        return {"k": k, "dir": parts[k - 1]}

    if not ray.is_initialized():
        ray.init()
    done = (
        ray.data.from_items([{"k": k} for k in range(1, n + 1)])
        .repartition(n)
        .map(
            run_one,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            concurrency=concurrency,
            max_retries=max_retries,
        )
        .take_all()
    )
    if sorted(r["k"] for r in done) != list(range(1, n + 1)):
        raise RuntimeError(f"egi.ray: shards {sorted(r['k'] for r in done)} came back, expected 1..{n}")
    _egi([command, "merge", *parts, "--out", out])
    with open(os.path.join(out, "summary.json")) as f:
        return json.load(f)


def fingerprint(
    input: str | os.PathLike,
    out: str | os.PathLike,
    *,
    model: str = "default",
    shards: int,
    options: Sequence[str] = (),
    **ray_args: Any,
) -> dict:
    """``egi fingerprint --model MODEL --input INPUT OPTIONS`` over ``shards`` Ray workers,
    merged into OUT (responses.jsonl, summary.json, plots): the single run's result. Returns
    the summary. ``ray_args``: ``num_cpus``, ``num_gpus``, ``device``, ``concurrency``,
    ``max_retries`` (:func:`run_sharded`)."""
    args = ["--model", str(model), "--input", os.path.abspath(os.fspath(input)), *options]
    return run_sharded("fingerprint", args, out, shards=shards, **ray_args)


def evaluate(
    bench: str,
    out: str | os.PathLike,
    *,
    model: str = "default",
    shards: int,
    options: Sequence[str] = (),
    **ray_args: Any,
) -> dict:
    """``egi eval --model MODEL --bench BENCH OPTIONS`` over ``shards`` Ray workers, merged
    into OUT (samples.jsonl, summary.json with Pass@k): the single run's result. ``bench``: a
    bundled name (gsm8k, math500, aime24, ...) or a file (give its absolute path)."""
    if os.path.exists(bench):
        bench = os.path.abspath(bench)
    args = ["--model", str(model), "--bench", bench, *options]
    return run_sharded("eval", args, out, shards=shards, **ray_args)
