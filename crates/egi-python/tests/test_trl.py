"""CorR-PO inside TRL: GRPOTrainer runs 2 steps on the default model (a Hugging Face directory
written by `egi save`) on CPU with egi's accuracy reward and the CorR-PO reward; the rho each
completion was rewarded with equals what `egi fingerprint` computes for the same text on the
same weights (the initial ones for step 1's completions, those after step 1's optimizer step
for step 2's).

Needs torch and trl; skipped without them unless EGI_REQUIRE_TRL=1 (set by .ci/run, which
installs them)."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

if os.environ.get("EGI_REQUIRE_TRL") != "1":
    pytest.importorskip("trl")
    pytest.importorskip("torch")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import TrainerCallback  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

import egi  # noqa: E402
from egi.rewards import math_accuracy  # noqa: E402
from egi.trl import CorrPO  # noqa: E402

PROBLEMS = [
    ("Tom has 3 bags with 4 apples each. How many apples does he have? Think step by step, one step per line.", "12"),
    ("A book costs 5 dollars. How much do 6 books cost? Think step by step, one step per line.", "30"),
]


class SaveAfterFirstStep(TrainerCallback):
    """Writes the policy as it is after step 1's optimizer step: the weights step 2 samples
    and is rewarded on."""

    def __init__(self, base, out):
        self.base, self.out = base, out

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == 1:
            model.save_pretrained(self.out, safe_serialization=True)
            for f in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
                if (self.base / f).exists():
                    shutil.copy(self.base / f, self.out / f)


def fingerprint_cli(egi_cmd, model_dir, rows, out):
    inp = out.with_suffix(".jsonl")
    inp.write_text("".join(json.dumps({"id": str(i), "prompt": r["prompt"], "response": r["completion"]}) + "\n" for i, r in enumerate(rows)))
    subprocess.run(
        [egi_cmd, "fingerprint", "--model", str(model_dir), "--input", str(inp), "--out", str(out), "--raw", "--step-mode", "mean-logit", "--bootstrap", "10"],
        check=True, capture_output=True,
    )
    return [json.loads(l) for l in (out / "responses.jsonl").read_text().splitlines()]


def test_grpo_trainer_with_corr_po(egi_cmd, tmp_path):
    base = tmp_path / "policy"
    subprocess.run([egi_cmd, "save", "--model", "default", "--out", str(base)], check=True, capture_output=True)
    step1 = tmp_path / "after-step-1"
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": q}], "answer": a} for q, a in PROBLEMS])
    corr = CorrPO(str(base))
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        use_cpu=True,
        bf16=False,
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=48,
        temperature=1.0,
        learning_rate=1e-4,
        reward_weights=[1.0, 0.1],
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=0,
    )
    trainer = GRPOTrainer(
        model=str(base),
        reward_funcs=[math_accuracy, corr.reward],
        args=args,
        train_dataset=ds,
        callbacks=[corr.callback, SaveAfterFirstStep(base, step1)],
    )
    trainer.train()

    # Both steps were rewarded, each on the weights handed over before it.
    by_step = {}
    for h in corr.history:
        by_step.setdefault(h["global_step"], []).append(h)
    assert sorted(by_step) == [0, 1] and all(len(v) == 4 for v in by_step.values())
    assert [by_step[s][0]["synced_step"] for s in (0, 1)] == [0, 1]
    for step, weights in ((0, base), (1, step1)):
        rows = by_step[step]
        cli = fingerprint_cli(egi_cmd, weights, rows, tmp_path / f"fp-{step}")
        for h, c in zip(rows, cli):
            assert h["rho_step"] == c.get("rho_step"), (step, h["completion"])
            assert h["reward"] == pytest.approx(-(1 + (c.get("rho_step") or 0.0)), abs=1e-12)
        assert any(h["rho_step"] is not None for h in rows), "no completion had 3 steps: lengthen them"

    # The optimizer step changed the weights, so step 2 was measured on new ones, and egi now
    # holds the final policy.
    first = egi.Model(str(base)).state_dict()
    after = egi.Model(str(step1)).state_dict()
    name = "model.layers.0.self_attn.q_proj.weight"
    assert not np.array_equal(first[name], after[name])
    final = {n: p.detach().float().numpy() for n, p in trainer.model.named_parameters()}
    assert np.array_equal(corr.model.state_dict()[name], final[name])
    # TRL logged the reward and egi's rho.
    logged = {k for entry in trainer.state.log_history for k in entry}
    assert "rewards/corr_po/mean" in logged and "corr_po/rho_step" in logged, sorted(logged)
    assert torch.isfinite(torch.tensor([e["loss"] for e in trainer.state.log_history if "loss" in e])).all()


def test_hand_weights_refuses_another_architecture():
    from egi.trl import hand_weights

    m = egi.Model("default")
    other = torch.nn.Sequential(torch.nn.Linear(4, 4))
    with pytest.raises(ValueError, match=r"parameters egi's model does not \(0.bias, 0.weight\)"):
        hand_weights(m, other)
    # Right names, one layer only: egi's other weights were never handed.
    q = "model.layers.0.self_attn.q_proj.weight"

    class Partial(torch.nn.Module):
        def named_parameters(self):
            return iter([(q, torch.nn.Parameter(torch.from_numpy(m.state_dict()[q])))])

    with pytest.raises(ValueError, match="never handed egi's weights"):
        hand_weights(m, Partial())
