"""egi.ray on a local two-worker Ray cluster: the sharded fingerprint and evaluation, merged,
equal the single `egi` run on the same input (every number; wall times aside).

Needs ray; skipped without it unless EGI_REQUIRE_TRL=1 (set by .ci/run, which installs it)."""

import json
import os
import subprocess

import pytest

if os.environ.get("EGI_REQUIRE_TRL") != "1":
    pytest.importorskip("ray")

import ray  # noqa: E402

import egi.ray  # noqa: E402

TIMING = {"seconds", "wall_seconds", "probe_seconds", "seconds_per_token", "tokens_per_second"}


def untimed(v):
    if isinstance(v, dict):
        return {k: untimed(x) for k, x in v.items() if k not in TIMING}
    if isinstance(v, list):
        return [untimed(x) for x in v]
    return v


def jsonl(p):
    return [json.loads(l) for l in p.read_text().splitlines() if l.strip()]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_fingerprint_on_ray_equals_the_single_run(cluster, egi_cmd, tmp_path):
    texts = tmp_path / "texts.jsonl"
    rows = [
        {"id": f"t{i}", "prompt": f"What is {i} + {i + 1}?", "response": "\n".join(f"Step {s}: {i} and {s}." for s in range(i % 4 + 1))}
        for i in range(7)
    ]
    texts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    options = ["--layers", "29", "--bootstrap", "200", "--step-mode", "mean-logit"]
    single = tmp_path / "single"
    subprocess.run([egi_cmd, "fingerprint", "--input", str(texts), "--out", str(single), *options], check=True, capture_output=True)
    out = tmp_path / "ray"
    summary = egi.ray.fingerprint(texts, out, shards=3, options=options, concurrency=2)
    want = json.loads((single / "summary.json").read_text())
    assert untimed(summary) == untimed(want)
    assert untimed(jsonl(out / "responses.jsonl")) == untimed(jsonl(single / "responses.jsonl"))
    assert sorted(os.listdir(out / "shards")) == ["part-1", "part-2", "part-3"]


def test_eval_on_ray_equals_the_single_run(cluster, egi_cmd, tmp_path):
    bench = tmp_path / "sums.jsonl"
    bench.write_text("".join(json.dumps({"id": f"p{i}", "problem": f"What is {i} + 2? Answer with the number only.", "answer": str(i + 2)}) + "\n" for i in range(5)))
    options = ["--n", "2", "--k", "1,2", "--max-new-tokens", "8", "--template", "plain", "--bootstrap", "200"]
    single = tmp_path / "single"
    subprocess.run([egi_cmd, "eval", "--bench", str(bench), "--out", str(single), *options], check=True, capture_output=True)
    summary = egi.ray.evaluate(str(bench), tmp_path / "ray", shards=2, options=options)
    assert untimed(summary) == untimed(json.loads((single / "summary.json").read_text()))


def test_a_failing_shard_names_the_error(cluster, tmp_path):
    with pytest.raises(Exception, match="missing.jsonl"):
        egi.ray.fingerprint(tmp_path / "missing.jsonl", tmp_path / "out", shards=2, max_retries=0)
