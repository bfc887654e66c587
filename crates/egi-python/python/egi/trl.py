"""CorR-PO inside TRL's ``GRPOTrainer``: egi measures each completion's fingerprint on the
trainer's current policy and rewards R_corr = -(1 + rho_step).

What a TRL user adds to a GRPO run (docs/python.md, "CorR-PO in TRL")::

    from egi.rewards import math_accuracy
    from egi.trl import CorrPO

    corr = CorrPO("path/to/policy")          # the policy's Hugging Face directory
    trainer = GRPOTrainer(
        model="path/to/policy",
        reward_funcs=[math_accuracy, corr.reward],
        args=GRPOConfig(..., reward_weights=[1.0, 0.1]),   # lambda = 0.1
        callbacks=[corr.callback],
        train_dataset=ds,
    )

``corr.callback`` hands the policy's weights to egi when training starts and after every
optimizer step (gathering them under DeepSpeed ZeRO-3, as TRL does for vLLM), so the reward
of a completion is measured on the weights that sampled it. ``lambda`` is TRL's reward
weight of ``corr.reward``; its advantage normalisation then acts on the weighted sum, as in
``egi train --algo corr-po``.

Numbers mean what ``egi train --algo corr-po`` means: rho is the Spearman correlation between
the step entropies and step influences of ``egi fingerprint`` with the options of
``egi train``'s ``fp_*`` keys and their defaults (notably ``step_mode="mean-logit"``: one
backward per step, docs/method.md "Step influence"; ``"mean"`` is the paper's per-token
measurement, about 9x dearer); a completion whose rho is undefined (fewer than 3 steps, a
constant series, an empty or too long completion) gets rho counted as 0, i.e. R_corr = -1.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any, Sequence

from .model import Model
from .rewards import completion_text

try:
    from transformers import TrainerCallback
except ImportError as e:  # pragma: no cover - the message is the point
    raise ImportError("egi.trl needs transformers (and TRL to train): pip install trl") from e

__all__ = ["CorrPO", "corr_reward", "hand_weights"]


def corr_reward(rho: float | None) -> float:
    """R_corr = -(1 + rho) in [-2, 0]; an undefined rho counts as 0 (-1), as in ``egi train``."""
    return -(1.0 + (0.0 if rho is None else float(rho)))


class CorrPO:
    """CorR-PO's reward for TRL, measured by egi on the trainer's current policy.

    ``model``: the policy as egi loads it (its Hugging Face directory, a GGUF file,
    ``"default"``) or an :class:`egi.Model`; it must have the trainer's architecture and
    parameter names, since the callback replaces its weights by the trainer's.
    ``device``/``dtype``: where egi measures (``"cpu"``/``"f32"`` by default; ``"cuda:N"``
    with a CUDA build of egi). The fingerprint options are ``egi fingerprint``'s
    (``target``, ``norm``, ``projections``, ``layers``, ``step_delim``, ``step_mode``,
    ``max_tokens``). ``processing_class``: the tokenizer that renders conversational
    prompts (default: the trainer's, taken when training starts; else egi's own chat
    template). ``sync_every``: hand the weights over every this many optimizer steps.

    Attributes: ``reward`` (the reward function, named ``corr_po``), ``callback`` (the
    TrainerCallback), ``history`` (one dict per rewarded completion: ``global_step``,
    ``prompt`` (as measured), ``completion``, ``rho_step``, ``rho_token``, ``reward``).
    """

    def __init__(
        self,
        model: str | Model = "default",
        *,
        device: str = "cpu",
        dtype: str = "f32",
        processing_class: Any = None,
        target: str = "logit",
        norm: str = "nuclear",
        projections: str | Sequence[str] = "q,k,v,o",
        layers: str | Sequence[int] = "all",
        step_delim: str = "\n",
        step_mode: str = "mean-logit",
        max_tokens: int = 2048,
        sync_every: int = 1,
        keep_history: bool = True,
    ):
        self.model = model if isinstance(model, Model) else Model(model, device=device, dtype=dtype)
        self.processing_class = processing_class
        self.options = dict(
            target=target, norm=norm, projections=projections, layers=layers,
            step_delim=step_delim, step_mode=step_mode, max_tokens=max_tokens,
        )
        if int(sync_every) < 1:
            raise ValueError(f"sync_every={sync_every}: expected an integer >= 1")
        self.sync_every = int(sync_every)
        self.keep_history = keep_history
        self.history: list[dict] = []
        self.synced_step: int | None = None
        self.callback = _HandWeights(self)

        def corr_po(prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **kwargs: Any) -> list[float]:
            return self._rewards(prompts or [], completions, kwargs)

        corr_po.__doc__ = "CorR-PO's reward -(1 + rho_step), measured by egi on the current policy."
        self.reward = corr_po

    def prompt_text(self, prompt: Any) -> str:
        """The prompt as the policy saw it: a string as it is (TRL's standard format), a list
        of messages rendered with the chat template and the generation prompt."""
        if isinstance(prompt, str):
            return prompt
        messages = list(prompt)
        if self.processing_class is not None:
            return self.processing_class.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self.model.apply_chat_template(messages)

    def _rewards(self, prompts: Sequence[Any], completions: Sequence[Any], kwargs: dict) -> list[float]:
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        p_text = [self.prompt_text(p) for p in prompts]
        c_text = [completion_text(c) for c in completions]
        fp = self.model.fingerprint(p_text, c_text, raw=True, bootstrap=0, **self.options)
        rho_step = [r.get("rho_step") for r in fp.responses]
        rewards = [corr_reward(r) for r in rho_step]
        state = kwargs.get("trainer_state")
        step = getattr(state, "global_step", None)
        if self.keep_history:
            for p, c, r, rew in zip(p_text, c_text, fp.responses, rewards):
                self.history.append(
                    {"global_step": step, "synced_step": self.synced_step, "prompt": p, "completion": c,
                     "rho_step": r.get("rho_step"), "rho_token": r.get("rho_token"), "reward": rew}
                )
        if callable(kwargs.get("log_extra")):
            kwargs["log_extra"]("rho_step", [float("nan") if r is None else r for r in rho_step])
        defined = [r for r in rho_step if r is not None]
        if callable(kwargs.get("log_metric")) and defined:
            kwargs["log_metric"]("corr_po/rho_step", sum(defined) / len(defined))
        return rewards


class _HandWeights(TrainerCallback):
    """Hands the policy's weights to egi when training starts and after optimizer steps."""

    def __init__(self, corr: CorrPO):
        self.corr = corr

    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
        if self.corr.processing_class is None and processing_class is not None and hasattr(processing_class, "apply_chat_template"):
            self.corr.processing_class = processing_class
        self._hand(model, state)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.corr.sync_every == 0:
            self._hand(model, state)

    def _hand(self, model, state):
        if model is None:
            raise RuntimeError("egi.trl: the trainer passed no model to the callback")
        hand_weights(self.corr.model, model)
        self.corr.synced_step = state.global_step


_LAYER = re.compile(r"^(.*?layers\.\d+)\.")


def hand_weights(egi_model: Model, policy: Any) -> None:
    """Copies a torch model's parameters (Hugging Face names) into ``egi_model``, a layer at a
    time: under DeepSpeed ZeRO-3 each layer's shards are gathered first (every rank must
    call this, as for any gather), so no rank ever holds more than one full layer beyond
    egi's copy. Raises if a name is unknown to egi or a weight of egi's is never handed."""
    policy = getattr(policy, "module", policy)  # DDP / DeepSpeed engine -> the model
    policy = getattr(policy, "_orig_mod", policy)  # torch.compile
    chunks: dict[str, list] = {}
    for name, p in policy.named_parameters():
        m = _LAYER.match(name)
        chunks.setdefault(m.group(1) if m else "", []).append((name, p))
    never: set[str] | None = None
    for params in chunks.values():
        zero3 = any(hasattr(p, "ds_id") for _, p in params)
        if zero3:
            import deepspeed

            gather = deepspeed.zero.GatheredParameters([p for _, p in params])
        else:
            gather = contextlib.nullcontext()
        with gather:
            missing, unexpected = egi_model.load_state_dict({n: p for n, p in params}, strict=False)
        if unexpected:
            raise ValueError(
                f"egi.trl: the policy has parameters egi's model does not ({', '.join(unexpected[:3])}"
                f"{' ...' if len(unexpected) > 3 else ''}): load the same architecture in egi "
                "(a PEFT/LoRA policy must be merged first)"
            )
        never = set(missing) if never is None else never & set(missing)
    if never:
        raise ValueError(
            f"egi.trl: the policy never handed egi's weights {sorted(never)[:3]}"
            f"{' ...' if len(never) > 3 else ''}: is it the same architecture?"
        )
