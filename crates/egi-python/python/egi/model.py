"""``egi.Model``: a model loaded by egi, scored and fingerprinted from Python."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import _egi

__all__ = ["Model", "Fingerprint"]


def _token_arrays(record: dict, fields: Sequence[str]) -> dict:
    """Adds a float64 numpy array per field of the record's tokens (ids as int64)."""
    tokens = record.get("tokens") or []
    for f in fields:
        dtype = np.int64 if f == "ids" else np.float64
        key = "id" if f == "ids" else f
        record[f] = np.array([t[key] for t in tokens], dtype=dtype)
    return record


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
        out = self._m.score(list(prompts), list(responses), ids=None if ids is None else [str(i) for i in ids], raw=raw)
        return [_token_arrays(r, ("ids", "logit", "logprob", "entropy")) for r in out]

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
        for r in records:
            if "tokens" in r:
                _token_arrays(r, ("entropy", "influence"))
                if per_matrix:
                    r["nuclear"] = np.array([t["nuclear"] for t in r["tokens"]], dtype=np.float64)
        return Fingerprint(records, summary)
