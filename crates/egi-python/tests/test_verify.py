"""egi.verify and egi.verify_many against the `egi verify` command on the same pairs."""

import json
import subprocess

import pytest

import egi

FIELDS = ["verdict", "extracted", "extract_method", "answer_normalized", "gold_normalized", "rule"]


def test_verify_equals_the_command_on_every_pair(pairs, egi_cmd, tmp_path):
    inp = tmp_path / "pairs.jsonl"
    inp.write_text("".join(json.dumps({"answer": a, "gold": g}) + "\n" for a, g in pairs))
    out = tmp_path / "verdicts.jsonl"
    subprocess.run([egi_cmd, "verify", "--input", str(inp), "--out", str(out)], check=True, capture_output=True)
    cli = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(cli) == len(pairs)
    many = egi.verify_many([a for a, _ in pairs], [g for _, g in pairs])
    verdicts = set()
    for (a, g), c, m in zip(pairs, cli, many):
        want = {k: c[k] for k in FIELDS}
        assert m == want, (a[:80], g)
        assert egi.verify(a, g) == want
        verdicts.add(m["verdict"])
    # The pairs reach every verdict, so the comparison covers them all.
    assert verdicts == {"correct", "wrong", "unparsable_answer", "unparsable_gold"}
    assert egi.correct_many([a for a, _ in pairs], [g for _, g in pairs]) == [m["verdict"] == "correct" for m in many]


def test_single_command_and_options(egi_cmd):
    out = subprocess.run(
        [egi_cmd, "verify", "--answer", "x = \\frac{6}{4}", "--gold", "1.5"], check=True, capture_output=True, text=True
    ).stdout
    assert json.loads(out) == egi.verify("x = \\frac{6}{4}", "1.5")
    r = egi.verify("<think>it is 4</think> so 5", "4", require_think_close=True)
    assert r["verdict"] == "wrong" and r["extracted"].endswith("5")
    assert egi.verify("The answer is 1.0000001", "1", rel_tol=1e-6)["verdict"] == "correct"
    assert egi.verify("The answer is 1.001", "1", rel_tol=1e-6)["verdict"] == "wrong"
    assert egi.verify("The answer is 1.001", "1", rel_tol=1e-2)["verdict"] == "correct"


def test_bad_input_raises():
    with pytest.raises(ValueError, match="2 answers but 1 golds"):
        egi.verify_many(["1", "2"], ["1"])
    with pytest.raises(ValueError, match="rel_tol"):
        egi.verify("1", "1", rel_tol=float("nan"))
    with pytest.raises(TypeError):
        egi.verify(1, "1")
    with pytest.raises(TypeError):
        egi.verify_many("12", ["1", "2"])
    # Huge and hostile inputs are answered, not hung on.
    assert egi.verify("{" * 100000, "1")["verdict"] in {"wrong", "unparsable_answer"}


def test_module_docstring_examples():
    import doctest

    failures, tried = doctest.testmod(egi, verbose=False)
    assert tried > 0 and failures == 0
