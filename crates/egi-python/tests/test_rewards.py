"""The reward functions called the way TRL's GRPOTrainer and verl call them."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from egi import rewards

PROMPTS = ["What is 2+3?", "What is half of 1?", "What is 6*7?"]
GOLDS = ["5", "\\frac{1}{2}", "42"]
TEXTS = ["2+3 = 5, so the answer is \\boxed{5}.", "It is 0.5", "6*7 = 41"]
WANT = [1.0, 1.0, 0.0]


def trl_call(func, completions, **columns):
    # GRPOTrainer._calculate_rewards: every dataset column but the prompt as a keyword
    # argument, plus completion_ids and the trainer state.
    return func(
        prompts=PROMPTS,
        completions=completions,
        completion_ids=[[1, 2, 3]] * len(completions),
        trainer_state=None,
        **columns,
    )


def test_trl_standard_and_conversational_completions():
    assert trl_call(rewards.math_accuracy, TEXTS, answer=GOLDS) == WANT
    conv = [[{"role": "assistant", "content": t}] for t in TEXTS]
    assert trl_call(rewards.math_accuracy, conv, answer=GOLDS) == WANT
    assert rewards.math_accuracy.__name__ == "math_accuracy"  # TRL logs rewards/<name>
    # Numbers as golds, as a dataset column of ints gives them.
    assert trl_call(rewards.math_accuracy, ["\\boxed{5}"], answer=[5]) == [1.0]


def test_trl_other_column_and_think():
    f = rewards.math_accuracy_from("solution", require_think_close=True)
    assert f.__name__ == "math_accuracy_solution"
    texts = ["<think>5?</think> \\boxed{5}", "\\boxed{0.5}", "<think>42</think> 41"]
    assert trl_call(f, texts, solution=GOLDS) == [1.0, 0.0, 0.0]
    with pytest.raises(KeyError, match="math_accuracy_from"):
        trl_call(rewards.math_accuracy, TEXTS, solution=GOLDS)


def test_trl_async_loop_and_threads():
    # TRL's async rewards run the function off the main thread; math-verify's signal-based
    # timeout fails there, egi's verifier has none.
    async def main():
        jobs = [asyncio.to_thread(trl_call, rewards.math_accuracy, TEXTS, answer=GOLDS) for _ in range(16)]
        return await asyncio.gather(*jobs)

    assert asyncio.run(main()) == [WANT] * 16
    with ThreadPoolExecutor(8) as ex:
        assert list(ex.map(lambda _: trl_call(rewards.math_accuracy, TEXTS, answer=GOLDS), range(32))) == [WANT] * 32
    out = []
    t = threading.Thread(target=lambda: out.append(rewards.compute_score("gsm8k", TEXTS[0], "5")))
    t.start()
    t.join()
    assert out == [1.0]


def test_verl_compute_score():
    # verl's NaiveRewardManager: compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...)
    for text, gold, want in zip(TEXTS, GOLDS, WANT):
        assert rewards.compute_score(data_source="math", solution_str=text, ground_truth=gold, extra_info={}) == want
        assert rewards.compute_score("math", text, gold) == want
    assert rewards.compute_score("math", "\\boxed{0.5}", ["1/3", "1/2"]) == 1.0
    assert rewards.compute_score("math", "<think>5</think>6", "5", {"require_think_close": True}) == 0.0


def test_completion_text_rejects_what_it_cannot_read():
    with pytest.raises(TypeError, match="expected a string"):
        rewards.completion_text(3)
    assert rewards.completion_text([{"role": "assistant", "content": [{"type": "text", "text": "4"}]}]) == "4"
