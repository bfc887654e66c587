"""Reward functions built on egi's verifier, with the signatures the trainers call.

Every function here is plain, thread-safe Python over egi's verifier, which never hangs and
uses no signals (so it runs in threads, in TRL's async reward loop and in Ray workers):
its work on one answer is bounded by construction, not by a timeout.

TRL (``GRPOTrainer``)::

    from egi.rewards import math_accuracy
    trainer = GRPOTrainer(model=..., reward_funcs=[math_accuracy], train_dataset=ds, ...)

The dataset needs a column with the gold answer, ``answer`` by default; another column name
through :func:`math_accuracy_from`. verl (``custom_reward_function.path`` pointing at this
file, ``custom_reward_function.name=compute_score``): :func:`compute_score`.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ._egi import correct_many as _correct_many
from ._egi import verify as _verify

__all__ = ["math_accuracy", "math_accuracy_from", "completion_text", "compute_score"]


def completion_text(completion: Any) -> str:
    """The text of one completion as TRL passes it: a string (standard format) or a list of
    messages ``[{"role": "assistant", "content": ...}]`` (conversational format), whose
    assistant contents are joined."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content(completion.get("content", ""))
    if isinstance(completion, (list, tuple)):
        parts = [
            _content(m.get("content", ""))
            for m in completion
            if isinstance(m, dict) and m.get("role", "assistant") == "assistant"
        ]
        return "\n".join(parts)
    raise TypeError(
        f"completion of type {type(completion).__name__}: expected a string or a list of "
        "{'role', 'content'} messages"
    )


def _content(content: Any) -> str:
    # Multimodal messages carry a list of parts: keep the text ones.
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def math_accuracy_from(
    column: str = "answer", *, require_think_close: bool = False
) -> Callable[..., list[float]]:
    """A TRL reward function reading the gold answer from dataset column ``column``: 1.0 for
    each completion egi's verifier finds equivalent to its gold, else 0.0 (an unparsable
    answer or gold is 0.0). ``require_think_close``: the answer counts only after a closing
    ``</think>``, as for reasoning models."""

    def reward(prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **kwargs: Any) -> list[float]:
        if column not in kwargs:
            raise KeyError(
                f"egi.rewards: the dataset has no column {column!r} with the gold answers "
                f"(columns passed: {sorted(k for k in kwargs if not k.startswith('_'))}); "
                f"name it with egi.rewards.math_accuracy_from('your_column')"
            )
        golds = [g if isinstance(g, str) else str(g) for g in kwargs[column]]
        texts = [completion_text(c) for c in completions]
        if len(golds) != len(texts):
            raise ValueError(f"{len(texts)} completions but {len(golds)} values of {column!r}")
        return [1.0 if ok else 0.0 for ok in _correct_many(texts, golds, require_think_close=require_think_close)]

    reward.__name__ = "math_accuracy" if column == "answer" else f"math_accuracy_{column}"
    reward.__qualname__ = reward.__name__
    return reward


math_accuracy = math_accuracy_from("answer")
math_accuracy.__doc__ = """TRL reward: 1.0 when egi's verifier finds the completion's answer
equivalent to the dataset's ``answer`` column, else 0.0. Called by GRPOTrainer as
``math_accuracy(prompts=..., completions=..., completion_ids=..., answer=[...], ...)``."""


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict | None = None,
    **kwargs: Any,
) -> float:
    """verl's custom reward function: 1.0 when ``solution_str``'s answer is equivalent to
    ``ground_truth`` (a string, a number, or a list of acceptable golds), else 0.0.
    ``extra_info`` may set ``require_think_close``."""
    think = bool((extra_info or {}).get("require_think_close", False))
    golds = ground_truth if isinstance(ground_truth, (list, tuple)) else [ground_truth]
    for g in golds:
        if _verify(solution_str, g if isinstance(g, str) else str(g), require_think_close=think)["verdict"] == "correct":
            return 1.0
    return 0.0
