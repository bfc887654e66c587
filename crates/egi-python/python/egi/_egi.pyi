"""Type stubs of egi's extension module (src/lib.rs)."""

from typing import Literal, NoReturn, TypedDict

import numpy

__version__: str

class VerifyRecord(TypedDict):
    verdict: Literal["correct", "wrong", "unparsable_answer", "unparsable_gold"]
    extracted: str | None
    extract_method: Literal["boxed", "gsm8k_hash", "answer_phrase", "inline_math", "last_number", "whole"] | None
    answer_normalized: str | None
    gold_normalized: str | None
    rule: str | None

def verify(answer: str, gold: str, *, require_think_close: bool = False, rel_tol: float = 1e-6) -> VerifyRecord:
    """Checks one answer against its gold: the verdict and the extracted and normalised forms,
    with the field names `egi verify` prints. ``answer`` is a whole response (the answer is
    extracted from it: last ``\\boxed{}``, ``#### N``, "the answer is", ...); ``gold`` the
    reference answer. ``require_think_close``: only text after ``</think>`` counts.
    ``rel_tol``: relative tolerance of numeric comparison."""

def verify_many(
    answers: list[str], golds: list[str], *, require_think_close: bool = False, rel_tol: float = 1e-6
) -> list[VerifyRecord]:
    """:func:`verify` over pairs, in parallel on every core with the GIL released."""

def correct_many(
    answers: list[str], golds: list[str], *, require_think_close: bool = False, rel_tol: float = 1e-6
) -> list[bool]:
    """Whether each answer is correct (verdict ``correct``), in parallel with the GIL released."""

def run_cli(args: list[str]) -> NoReturn:
    """Runs the ``egi`` command with ``args`` (program name first) and ends the process."""

class Model:
    """A loaded model (wrapped by :class:`egi.Model`)."""

    def __init__(self, model: str = "default", device: str = "cpu", dtype: str = "f32") -> None: ...
    def config(self) -> dict: ...
    def apply_chat_template(self, messages: list[tuple[str, str]], add_generation_prompt: bool = True) -> str: ...
    def state_dict(self) -> dict[str, numpy.ndarray]: ...
    def save(self, dir: str) -> None: ...
    def load_state_dict(
        self, names: list[str], arrays: list[numpy.ndarray], *, strict: bool = True
    ) -> tuple[list[str], list[str]]:
        """Replaces weights (float32 arrays) all or none; returns (unexpected, missing)."""
    def generate(
        self,
        prompts: list[str],
        *,
        n: int = 1,
        max_new_tokens: int = 256,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        seed: int = 0,
        stop: list[str] = ...,
        chat: bool = True,
        system: str | None = None,
    ) -> list[dict]:
        """``n`` records per prompt, prompt after prompt."""
    def score(self, prompts: list[str], responses: list[str], *, ids: list[str] | None = None, raw: bool = False) -> list[dict]: ...
    def fingerprint(
        self, prompts: list[str], responses: list[str], *, ids: list[str] | None = None, flags: list[str] = ...
    ) -> tuple[list[dict], dict]:
        """Records and summary; ``flags`` are ``egi fingerprint``'s options."""
