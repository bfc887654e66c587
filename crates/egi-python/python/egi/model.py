"""``egi.Model``: a model loaded by egi, scored and fingerprinted from Python."""

from __future__ import annotations

import os
from collections import namedtuple
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from . import _egi

__all__ = ["Model", "Fingerprint"]


class Fingerprint:
    """The fingerprint of a set of responses: ``responses`` (one dict per response, the fields
    of ``egi fingerprint``'s responses.jsonl plus numpy arrays ``entropy`` and ``influence``
    per token, and ``nuclear`` (tokens x matrices) with ``per_matrix=True``; a skipped
    response has only ``id`` and ``skipped``) and ``summary`` (summary.json's fields: mean and
    median rho with bootstrap 95% CIs, the verdict, ...)."""

    def __init__(self, responses: list[dict], summary: dict):
        self.responses = responses
        self.summary = summary

    def __repr__(self) -> str:
        rho = self.summary.get("rho_step" if self.summary.get("granularity") == "step" else "rho_token") or {}
        return f"<egi.Fingerprint of {len(self.responses)} responses, verdict {self.summary.get('verdict')!r}, mean rho {rho.get('mean')}>"

    def to_pandas(self, level: str = "response"):
        """A pandas DataFrame (pandas needed): ``level="response"`` one row per response (id,
        n_tokens, rho_token, rho_step, ...), ``"token"`` one row per token (id, pos, text, step,
        entropy, logit, logprob, influence), ``"step"`` one row per step."""
        import pandas as pd

        if level == "response":
            keep = [{k: v for k, v in r.items() if k not in ("tokens", "steps", "entropy", "influence", "nuclear")} for r in self.responses]
            return pd.DataFrame(keep)
        if level in ("token", "step"):
            rows = []
            for r in self.responses:
                for i, t in enumerate(r.get(level + "s") or []):
                    rows.append({"id": r["id"], level: i, **{k: v for k, v in t.items() if k != "nuclear"}})
            return pd.DataFrame(rows)
        raise ValueError(f"level={level!r}: expected 'response', 'token' or 'step'")


class Model:
    """A model loaded by egi: a GGUF file, a Hugging Face directory, ``"default"``
    (SmolLM2-135M-Instruct, fetched once) or a hub id. ``device``: ``"cpu"``, ``"cuda"``,
    ``"cuda:N"`` or ``"auto"`` (a CUDA build of egi is needed for a GPU); ``dtype``: ``"f32"``
    or ``"bf16"``. Long calls release the GIL and stop on Ctrl-C between responses."""

    def __init__(self, model: str = "default", device: str = "cpu", dtype: str = "f32"):
        self._m = _egi.Model(model, device, dtype)
        self.name = model

    def __repr__(self) -> str:
        c = self._m.config()
        return f"<egi.Model {self.name!r}: {c.get('model_type')}, {c.get('num_hidden_layers')} layers>"

    def config(self) -> dict:
        """The configuration, with Hugging Face's names (``egi info``)."""
        return self._m.config()

    def score(self, prompts: Sequence[str], responses: Sequence[str], *, ids: Sequence[str] | None = None, raw: bool = False) -> list[dict]:
        """Teacher-forced scores of each response after its prompt (``egi score``): per
        response the record of ``egi score`` plus numpy arrays ``ids``, ``logit``,
        ``logprob`` and ``entropy`` over the response tokens. ``raw``: the prompt as it is,
        without the chat template."""
        return self._m.score(list(prompts), list(responses), ids=None if ids is None else [str(i) for i in ids], raw=raw)

    def fingerprint(
        self,
        prompts: Sequence[str],
        responses: Sequence[str],
        *,
        ids: Sequence[str] | None = None,
        raw: bool = False,
        target: str = "logit",
        norm: str = "nuclear",
        projections: str | Sequence[str] = "q,k,v,o",
        layers: str | Sequence[int] = "all",
        granularity: str = "step",
        step_delim: str = "\n",
        step_mode: str = "mean",
        correlation: str = "spearman",
        per_matrix: bool = False,
        batch: int = 16,
        max_tokens: int = 2048,
        bootstrap: int = 2000,
    ) -> Fingerprint:
        """The fingerprint of each response (``egi fingerprint``, same options and defaults,
        docs/method.md section 2): per token the entropy and the influence (the norm of the
        gradient of the target with respect to every measured q/k/v/o matrix), steps, and
        Spearman rho at token and step level; a summary with CIs and the verdict."""
        if not isinstance(projections, str):
            projections = ",".join(projections)
        if not isinstance(layers, str):
            layers = ",".join(str(int(x)) for x in layers)
        flags = [
            "--target", target, "--norm", norm, "--projections", projections, "--layers", layers,
            "--granularity", granularity, "--step-delim", step_delim, "--step-mode", step_mode,
            "--correlation", correlation, "--batch", str(int(batch)), "--max-tokens", str(int(max_tokens)),
            "--bootstrap", str(int(bootstrap)),
        ]
        if raw:
            flags.append("--raw")
        if per_matrix:
            flags.append("--per-matrix")
        records, summary = self._m.fingerprint(
            list(prompts), list(responses), ids=None if ids is None else [str(i) for i in ids], flags=flags
        )
        return Fingerprint(records, summary)

    def generate(
        self,
        prompts: str | Sequence[str],
        *,
        n: int = 1,
        max_new_tokens: int = 256,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        seed: int = 0,
        stop: Sequence[str] = (),
        raw: bool = False,
        system: str | None = None,
    ) -> list[list[dict]]:
        """Samples ``n`` completions of each prompt (``egi generate --json``; all prompts in
        one batch with a KV cache): per prompt a list of dicts ``index``, ``seed``, ``text``,
        ``finish_reason`` (``"eos"``, ``"stop"``, ``"length"``) and numpy arrays
        ``token_ids`` and ``logprobs``. Completion i of a prompt uses seed ``seed + i``, so
        a call gives the same completions as ``egi generate --chat --seed S --n N`` on that
        prompt. The prompt is wrapped in the chat template (with ``system`` as a system
        message) unless ``raw``. Sampling settings not given come from the checkpoint's
        generation_config, else temperature 1 (0 is greedy), top-p 1, top-k off."""
        single = isinstance(prompts, str)
        prompts = [prompts] if single else list(prompts)
        flat = self._m.generate(
            prompts, n=int(n), max_new_tokens=int(max_new_tokens), temperature=temperature, top_p=top_p,
            top_k=top_k, seed=int(seed), stop=list(stop), chat=not raw, system=system,
        )
        per = max(int(n), 1)
        return [flat[i * per : (i + 1) * per] for i in range(len(prompts))]

    def apply_chat_template(self, messages: Sequence[Mapping[str, str]], *, add_generation_prompt: bool = True) -> str:
        """The model's chat template applied to ``messages`` (``[{"role": ..., "content":
        ...}]``, as in transformers), as text: what egi's fingerprint measures with
        ``raw=True``."""
        return self._m.apply_chat_template([(m["role"], m["content"]) for m in messages], add_generation_prompt)

    def state_dict(self) -> dict[str, np.ndarray]:
        """The current weights under Hugging Face names, as float32 numpy arrays (copies; a
        tied model has no ``lm_head.weight``)."""
        return self._m.state_dict()

    def save(self, path: str | os.PathLike) -> None:
        """Writes the current weights (after :meth:`load_state_dict`, the loaded ones), the
        tokenizer and generation defaults as a Hugging Face directory (``egi save``)."""
        self._m.save(os.fspath(path))

    def load_state_dict(self, state_dict: Mapping[str, Any] | Iterable[tuple[str, Any]], *, strict: bool = True):
        """Replaces the weights with ``state_dict``'s (Hugging Face parameter names, e.g.
        ``model.layers.0.self_attn.q_proj.weight``, to numpy arrays or torch tensors on any
        device and of any float dtype; converted to the model's dtype), so that a trainer can
        hand egi its current policy without writing a checkpoint. All or nothing: every name
        and shape is checked before a weight changes; a wrong type or shape raises an
        exception naming the parameter. ``strict`` (as torch): every weight given and every
        name known; ``strict=False`` loads a subset and skips unknown names. A tied model's
        ``lm_head.weight`` is accepted when it equals the embedding. A call already running
        (a fingerprint in another thread) finishes on the weights it started with. Returns
        ``(missing_keys, unexpected_keys)``, as torch does."""
        items = state_dict.items() if isinstance(state_dict, Mapping) else state_dict
        names, arrays = [], []
        for name, value in items:
            names.append(str(name))
            arrays.append(_as_f32(str(name), value))
        unexpected, missing = self._m.load_state_dict(names, arrays, strict=strict)
        return IncompatibleKeys(missing, unexpected)


# As torch's result of load_state_dict.
IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _as_f32(name: str, value: Any) -> np.ndarray:
    """A C-ordered float32 numpy array of a numpy array or a torch tensor (torch not needed
    otherwise); anything else is a TypeError naming the parameter."""
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        if not value.is_floating_point():
            raise TypeError(f"{name}: expected floating-point weights, got a torch tensor of {value.dtype}")
        import torch

        return np.ascontiguousarray(value.detach().to(device="cpu", dtype=torch.float32).numpy())
    if isinstance(value, np.ndarray):
        if value.dtype.kind != "f":
            raise TypeError(f"{name}: expected floating-point weights, got a numpy array of {value.dtype}")
        return np.ascontiguousarray(value, dtype=np.float32)
    raise TypeError(f"{name}: expected a numpy array or a torch tensor, got {type(value).__name__}")
