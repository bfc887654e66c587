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
    # A per-step mode has no per-token influences: NaN, and rho_step still measured.
    ml = model.fingerprint(q, r, bootstrap=10, step_mode="mean-logit").responses[0]
    assert np.isnan(ml["influence"]).all() and not np.isnan(ml["entropy"]).any()
    assert -1 <= ml["rho_step"] <= 1 and len(ml["steps"]) == len(full["steps"])
    assert [s["influence"] for s in ml["steps"]] != pytest.approx([s["influence"] for s in full["steps"]], rel=1e-3)


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


def test_generate_equals_the_command(model, egi_cmd):
    q = "What is 2 + 3?"
    cli = subprocess.run(
        [egi_cmd, "generate", "--model", "default", "--prompt", q, "--chat", "--json", "--n", "2", "--seed", "7", "--max-new-tokens", "12"],
        check=True, capture_output=True, text=True,
    ).stdout
    want = [json.loads(l) for l in cli.splitlines() if l.strip()]
    got = model.generate([q, "Name a colour."], n=2, seed=7, max_new_tokens=12)
    assert len(got) == 2 and all(len(g) == 2 for g in got)
    for g, w in zip(got[0], want):
        assert g["text"] == w["text"] and g["seed"] == w["seed"] and g["finish_reason"] == w["finish_reason"]
        assert g["token_ids"].dtype == np.uint32 and list(g["token_ids"]) == w["token_ids"]
        assert np.allclose(g["logprobs"], w["logprobs"], rtol=0, atol=1e-9)
    greedy = model.generate("What is 2 + 3?", temperature=0, max_new_tokens=8, n=2)[0]
    assert greedy[0]["text"] == greedy[1]["text"]


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory, egi_cmd):
    out = tmp_path_factory.mktemp("hf") / "smollm2"
    subprocess.run([egi_cmd, "save", "--model", "default", "--out", str(out)], check=True, capture_output=True)
    return out


def test_load_state_dict_equals_loading_the_checkpoint(hf_dir, tmp_path):
    """Weights handed over in memory measure as the same weights written to disk by an
    independent writer (safetensors' numpy API) and loaded by egi and by the command."""
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    m = egi.Model(str(hf_dir))
    sd = m.state_dict()
    assert sd["model.layers.0.self_attn.q_proj.weight"].dtype == np.float32
    rng = np.random.default_rng(0)
    new = {k: (v * (1 + 0.05 * rng.standard_normal(v.shape))).astype(np.float32) for k, v in sd.items()}
    missing, unexpected = m.load_state_dict(new)
    assert missing == [] and unexpected == []
    for k in ("model.embed_tokens.weight", "model.layers.29.mlp.down_proj.weight"):
        assert np.array_equal(m.state_dict()[k], new[k])
    other = tmp_path / "perturbed"
    other.mkdir()
    for f in hf_dir.iterdir():
        if f.suffix != ".safetensors" and f.is_file():
            (other / f.name).write_bytes(f.read_bytes())
    safetensors_numpy.save_file(new, str(other / "model.safetensors"), metadata={"format": "pt"})
    # Two layers' gradients (every weight still shapes them through the forward): cheaper.
    q, r, opts = [TEXTS[1][1]], [TEXTS[1][2]], dict(bootstrap=0, layers=[0, 29])
    a = m.fingerprint(q, r, **opts)
    b = egi.Model(str(other)).fingerprint(q, r, **opts)
    before = egi.Model(str(hf_dir)).fingerprint(q, r, **opts)
    for x, y, z in zip(a.responses, b.responses, before.responses):
        assert np.array_equal(x["influence"], y["influence"]) and x["rho_step"] == y["rho_step"]
        assert not np.allclose(x["influence"], z["influence"], rtol=1e-3)
    # save() writes what was loaded.
    saved = tmp_path / "saved"
    m.save(saved)
    c = egi.Model(str(saved)).fingerprint(q, r, **opts)
    assert all(np.array_equal(x["influence"], y["influence"]) for x, y in zip(a.responses, c.responses))


def test_load_state_dict_subsets_and_torch(hf_dir):
    m = egi.Model(str(hf_dir))
    sd = m.state_dict()
    name = "model.layers.3.self_attn.v_proj.weight"
    missing, unexpected = m.load_state_dict({name: np.zeros_like(sd[name]), "extra.weight": np.ones(2, np.float32)}, strict=False)
    assert unexpected == ["extra.weight"] and len(missing) == len(sd) - 1
    assert not m.state_dict()[name].any()
    assert np.array_equal(m.state_dict()["model.norm.weight"], sd["model.norm.weight"])
    # float64 arrays and non-contiguous views are converted.
    m.load_state_dict({name: np.asfortranarray(sd[name].astype(np.float64))}, strict=False)
    assert np.array_equal(m.state_dict()[name], sd[name])
    # The tied head is accepted when it equals the embedding, refused when it does not.
    emb = sd["model.embed_tokens.weight"]
    m.load_state_dict({"lm_head.weight": emb}, strict=False)
    with pytest.raises(ValueError, match="lm_head.weight: this model ties it"):
        m.load_state_dict({"lm_head.weight": emb + 1}, strict=False)
    torch = pytest.importorskip("torch")
    m.load_state_dict({name: torch.from_numpy(sd[name]).to(torch.bfloat16)}, strict=False)
    assert np.array_equal(m.state_dict()[name], torch.from_numpy(sd[name]).to(torch.bfloat16).float().numpy())


def test_load_state_dict_bad_input_names_the_parameter(model):
    sd = model.state_dict()
    q = "model.layers.0.self_attn.q_proj.weight"
    with pytest.raises(ValueError, match=r"model.layers.0.self_attn.q_proj.weight: shape \[3, 4\] given, this model's is \[576, 576\]"):
        model.load_state_dict({q: np.zeros((3, 4), np.float32)}, strict=False)
    with pytest.raises(TypeError, match="model.layers.0.self_attn.q_proj.weight: expected a numpy array or a torch tensor, got list"):
        model.load_state_dict({q: [[0.0]]}, strict=False)
    with pytest.raises(TypeError, match="q_proj.weight: expected floating-point weights, got a numpy array of int64"):
        model.load_state_dict({q: np.zeros((576, 576), np.int64)}, strict=False)
    with pytest.raises(ValueError, match="unexpected model.layers.0.q.weight; missing"):
        model.load_state_dict({"model.layers.0.q.weight": sd[q]})
    with pytest.raises(ValueError, match="missing model.embed_tokens.weight and 270 more"):
        model.load_state_dict({q: sd[q]})
    # Nothing changed: all or none.
    assert np.array_equal(model.state_dict()[q], sd[q])
