"""Optional cross-check (not part of CI, needs torch + transformers):
a model written by `egi save` loads in transformers with the same tokenizer, chat template
and log-probs as the PyTorch fixture.

    egi save --model default --out /tmp/smol-hf
    python tools/xcheck_transformers.py /tmp/smol-hf test-data/reference/smollm2_public.json
"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

d, fixture = sys.argv[1], sys.argv[2]
tok = AutoTokenizer.from_pretrained(d)
m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32)
worst = 0.0
for case in json.load(open(fixture))["cases"]:
    text = tok.apply_chat_template(
        [{"role": "user", "content": case["prompt"]}], add_generation_prompt=True, tokenize=False
    )
    assert text == case["prompt_text"], "chat template differs"
    ids = tok(text + case["response"], add_special_tokens=False)["input_ids"]
    assert ids == case["input_ids"], "tokenization differs"
    with torch.no_grad():
        lp = torch.log_softmax(m(torch.tensor([ids])).logits[0].double(), -1)
    for t in case["tokens"]:
        worst = max(worst, abs(lp[t["pos"] - 1][t["id"]].item() - t["logprob"]))
print(f"max |logprob - fixture| = {worst:.2e}")
assert worst < 2e-3
