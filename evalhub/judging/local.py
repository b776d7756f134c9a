"""A judge run on a local model, loaded like the base models (``trainer.engine.generate``).

The judge does not write a reply: it reads the model's next-token distribution right after the
question and takes the likeliest of the answers "A", "B" and "tie" (the first token of each).
A 135M model asked to "answer with A, B or tie" often writes something else ("Sure! Both
answers...") that names no choice, so generating and parsing would lose most comparisons to
errors; its preference among the three answers exists on every question, costs one forward pass
instead of a decoding loop, and is deterministic. The log-probabilities are kept as the raw
reply, so that a reader can see how close the call was. Larger local models are read the same
way; a judge that should reason before answering belongs behind an HTTP endpoint.

No Django imports; torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalhub.judging.pairwise import SHOWN_CHOICES
from trainer.engine.data import sorted_batches

SHARED_FIRST_TOKEN = "the answers {choices} start with the same token in this model's vocabulary"


@dataclass(frozen=True)
class Scored:
    choice: str  # shown terms: "A", "B" or "tie"
    raw: str
    prompt_tokens: int
    latency_ms: int


class LocalJudge:
    """A model loaded once, asked any number of questions."""

    def __init__(self, model_dir: str | Path, *, device: str | None = None) -> None:
        from trainer.engine import generate

        self.loaded = generate.load_model(model_dir, device=device)
        tokenizer = self.loaded.tokenizer
        self.answer_ids = [
            tokenizer.encode(choice, add_special_tokens=False)[0] for choice in SHOWN_CHOICES
        ]
        if len(set(self.answer_ids)) < len(self.answer_ids):
            raise ValueError(SHARED_FIRST_TOKEN.format(choices=", ".join(SHOWN_CHOICES)))

    def judge(
        self, conversations: Sequence[list[dict[str, str]]], *, batch_size: int = 8
    ) -> list[Scored]:
        """One verdict per conversation, in the caller's order."""
        import torch

        from trainer.engine.generate import render_prompts

        tokenizer, model = self.loaded.tokenizer, self.loaded.model
        texts = render_prompts(tokenizer, conversations)
        lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
        results: list[Scored | None] = [None] * len(texts)
        with torch.inference_mode():
            for indices in sorted_batches(lengths, batch_size):
                started = time.perf_counter()
                logprobs = self._answer_logprobs(model, tokenizer, [texts[i] for i in indices])
                latency_ms = round((time.perf_counter() - started) * 1000 / len(indices))
                for i, row in zip(indices, logprobs, strict=True):
                    results[i] = _scored(row, lengths[i], latency_ms)
        return [r for r in results if r is not None]

    def _answer_logprobs(self, model: Any, tokenizer: Any, texts: list[str]) -> list[list[float]]:
        import torch

        encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(
            self.loaded.device
        )
        mask = encoded["attention_mask"]
        # Left padding: positions count from each row's first real token, as generate() does.
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(**encoded, position_ids=positions).logits[:, -1, :].float()
        logprobs = torch.log_softmax(logits, dim=-1)[:, self.answer_ids]
        return logprobs.tolist()


def _scored(logprobs: list[float], prompt_tokens: int, latency_ms: int) -> Scored:
    best = max(range(len(SHOWN_CHOICES)), key=lambda i: logprobs[i])
    detail = ", ".join(f"{c} {lp:.3f}" for c, lp in zip(SHOWN_CHOICES, logprobs, strict=True))
    return Scored(
        choice=SHOWN_CHOICES[best],
        raw=f"{SHOWN_CHOICES[best]} (log-probabilities: {detail})",
        prompt_tokens=prompt_tokens,
        latency_ms=latency_ms,
    )
