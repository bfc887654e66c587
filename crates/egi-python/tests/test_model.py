"""egi.Model on the real default model: scores and the fingerprint equal what the `egi score`
and `egi fingerprint` commands write for the same texts; bad input raises."""

import json
import subprocess

import numpy as np
import pytest

import egi

TEXTS = [
    ("t1", "Tom has 3 bags with 4 apples each. How many apples?", "Each bag has 4 apples.\nThere are 3 bags.\n3 * 4 = 12.\nThe answer is 12."),
    ("t2", "What is 15 - 7?", "We subtract 7 from 15.\n15 - 7 = 8.\nSo the answer is \\boxed{8}."),
]


@pytest.fixture(scope="module")
def model():
    return egi.Model("default")


def write_input(tmp_path):
    p = tmp_path / "texts.jsonl"
    p.write_text("".join(json.dumps({"id": i, "prompt": q, "response": r}) + "\n" for i, q, r in TEXTS))
    return p


def test_fingerprint_equals_the_command(model, egi_cmd, tmp_path):
    inp = write_input(tmp_path)
    out = tmp_path / "fp"
    subprocess.run(
        [egi_cmd, "fingerprint", "--model", "default", "--input", str(inp), "--out", str(out), "--bootstrap", "300", "--per-matrix"],
        check=True, capture_output=True,
    )
    cli = [json.loads(l) for l in (out / "responses.jsonl").read_text().splitlines()]
    cli_summary = json.loads((out / "summary.json").read_text())
    fp = model.fingerprint([q for _, q, _ in TEXTS], [r for _, _, r in TEXTS], ids=[i for i, _, _ in TEXTS], bootstrap=300, per_matrix=True)
    assert [r["id"] for r in fp.responses] == ["t1", "t2"]
    for py, c in zip(fp.responses, cli):
        want = np.array([t["influence"] for t in c["tokens"]])
        assert py["influence"].shape == want.shape and py["influence"].dtype == np.float64
        assert np.max(np.abs(py["influence"] - want) / np.abs(want)) < 1e-6
        assert np.allclose(py["entropy"], [t["entropy"] for t in c["tokens"]], rtol=1e-6, atol=0)
        assert py["nuclear"].shape == (len(want), 4 * model.config()["num_hidden_layers"])
        assert py["rho_token"] == pytest.approx(c["rho_token"], abs=1e-12)
        assert py["rho_step"] == pytest.approx(c["rho_step"], abs=1e-12)
        assert [t["text"] for t in py["tokens"]] == [t["text"] for t in c["tokens"]]
        assert len(py["steps"]) == len(c["steps"]) > 1
    # Same bootstrap seed: the CIs, the verdict and the per-matrix means are equal too.
    for k in ("verdict", "granularity", "responses", "rho_token", "rho_step", "pooled_rho_token", "matrix_mean"):
        assert json.dumps(fp.summary[k], sort_keys=True) == json.dumps(cli_summary[k], sort_keys=True), k
    assert "verdict" in repr(fp)


def test_fingerprint_options_reach_the_probe(model):
    q, r = [TEXTS[0][1]], [TEXTS[0][2]]
    full = model.fingerprint(q, r, bootstrap=10).responses[0]
    top = model.fingerprint(q, r, bootstrap=10, layers=[28, 29], projections=["q", "o"], per_matrix=True).responses[0]
    assert top["nuclear"].shape[1] == 4 and np.all(top["influence"] < full["influence"])
    fro = model.fingerprint(q, r, bootstrap=10, norm="frobenius").responses[0]
    assert np.all(fro["influence"] <= full["influence"] * (1 + 1e-9))


def test_score_equals_the_command(model, egi_cmd, tmp_path):
    inp = write_input(tmp_path)
    out = tmp_path / "scores.jsonl"
    subprocess.run([egi_cmd, "score", "--model", "default", "--input", str(inp), "--out", str(out)], check=True, capture_output=True)
    cli = [json.loads(l) for l in out.read_text().splitlines()]
    got = model.score([q for _, q, _ in TEXTS], [r for _, _, r in TEXTS], ids=["t1", "t2"])
    for py, c in zip(got, cli):
        assert list(py["ids"]) == [t["id"] for t in c["tokens"]]
        assert np.allclose(py["logprob"], [t["logprob"] for t in c["tokens"]], rtol=0, atol=1e-9)
        assert py["total_logprob"] == pytest.approx(c["total_logprob"], rel=1e-12)


def test_bad_input_raises(model):
    with pytest.raises(FileNotFoundError):
        egi.Model("/nonexistent/model-dir")
    with pytest.raises(ValueError, match="--device"):
        egi.Model("default", device="gpu")
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        model.fingerprint(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="--target"):
        model.fingerprint(["a"], ["b c d"], target="gradient")
    with pytest.raises(ValueError, match="--layers"):
        model.fingerprint(["a"], ["b c d"], layers=[99])
    with pytest.raises(ValueError, match="duplicate id"):
        model.fingerprint(["a", "b"], ["c d e", "f g h"], ids=["x", "x"])
    skipped = model.fingerprint(["a"], ["   "], bootstrap=10).responses[0]
    assert skipped["skipped"] == "empty response"
