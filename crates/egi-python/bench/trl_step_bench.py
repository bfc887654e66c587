"""What CorR-PO costs inside TRL's GRPOTrainer: the same GRPO run with egi's accuracy reward
alone and with the CorR-PO reward and callback added, same run, same machine; a table of the
median step time, and of the CorR-PO run's time in egi's fingerprint and in handing the
weights over.

    python crates/egi-python/bench/trl_step_bench.py --steps 4

Needs the package installed with torch and trl. The model is the default one, written once
as a Hugging Face directory (``egi.Model("default").save``)."""

import argparse
import os
import statistics
import tempfile
import time

import egi
import egi.model
import egi.trl
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from egi.rewards import math_accuracy

PROBLEMS = [
    ("Tom has 3 bags with 4 apples each. How many apples does he have? Think step by step, one step per line.", "12"),
    ("A book costs 5 dollars. How much do 6 books cost? Think step by step, one step per line.", "30"),
    ("Sam reads 7 pages a day. How many pages does he read in 5 days? Think step by step, one step per line.", "35"),
    ("A box holds 9 eggs. How many eggs are in 4 boxes? Think step by step, one step per line.", "36"),
]


class Timer:
    """Wall time spent inside a function, summed."""

    def __init__(self, owner, name):
        self.total, self.owner, self.name = 0.0, owner, name
        self.orig = getattr(owner, name)

        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return self.orig(*a, **k)
            finally:
                self.total += time.perf_counter() - t

        setattr(owner, name, timed)


def run(base, steps, corr_po, completion_len, work):
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": q}], "answer": a} for q, a in PROBLEMS])
    corr = egi.trl.CorrPO(base) if corr_po else None
    args = GRPOConfig(
        output_dir=os.path.join(work, "out"), use_cpu=True, bf16=False, max_steps=steps,
        per_device_train_batch_size=8, num_generations=4, max_completion_length=completion_len,
        learning_rate=1e-5, reward_weights=[1.0, 0.1] if corr_po else None, logging_steps=1,
        save_strategy="no", report_to=[], seed=0,
    )
    trainer = GRPOTrainer(
        model=base, reward_funcs=[math_accuracy] + ([corr.reward] if corr_po else []), args=args,
        train_dataset=ds, callbacks=[corr.callback] if corr_po else [],
    )
    fp, hand = Timer(egi.model.Model, "fingerprint"), Timer(egi.trl, "hand_weights")
    try:
        trainer.train()
    finally:
        setattr(egi.model.Model, "fingerprint", fp.orig)
        setattr(egi.trl, "hand_weights", hand.orig)
    times = [e["step_time"] for e in trainer.state.log_history if "step_time" in e]
    lengths = [e["completions/mean_length"] for e in trainer.state.log_history if "completions/mean_length" in e]
    return statistics.median(times), fp.total / steps, hand.total / steps, statistics.mean(lengths)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--completion-len", type=int, default=64)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        base = os.path.join(work, "smollm2-hf")
        egi.Model("default").save(base)
        grpo = run(base, a.steps, False, a.completion_len, work)
        corr = run(base, a.steps, True, a.completion_len, work)
    print(f"GRPOTrainer on CPU, default model, 8 completions of up to {a.completion_len} tokens per step, {a.steps} steps each")
    print("| run | median step s | fingerprint s/step | weights handed s/step | mean completion tokens | x GRPO |")
    print("|---|---|---|---|---|---|")
    print(f"| GRPO (math_accuracy) | {grpo[0]:.2f} | - | - | {grpo[3]:.1f} | 1.00 |")
    print(f"| CorR-PO (+ egi.trl) | {corr[0]:.2f} | {corr[1]:.2f} | {corr[2]:.2f} | {corr[3]:.1f} | {corr[0] / grpo[0]:.2f} |")


if __name__ == "__main__":
    main()
