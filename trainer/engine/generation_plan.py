"""How much of a device generation may use: whether the unquantised weights fit, and how many
sequences a batch takes.

A decoding step reads every weight once whatever the batch, so up to the point where the KV cache
reads catch up with the weights, a larger batch gives more tokens per second for free. The batch
is therefore as large as memory allows (up to ``MAX_BATCH``): each sequence holds its keys and
values for the prompt and the answer (a static cache holds them for the longest prompt of the
call), and while the prompt is read in (prefill) its activations and the step's logits.

Pure arithmetic, except ``model_footprint``, which reads a model's config (transformers is
imported inside it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

# More sequences than this buy little: by then each step reads about as many bytes of KV cache
# as of weights (Llama-3.1-8B, 450 tokens a sequence: 7.5 GB of cache against 15 GB of weights).
MAX_BATCH = 128
# The bf16 weights are chosen over NF4 when they fit with room for this many sequences of
# ``REFERENCE_TOKENS`` tokens (prompt and answer), the batch today's NF4 path runs.
MIN_FAST_BATCH = 8
REFERENCE_TOKENS = 1024
LOGIT_BYTES = 4  # the step's logits are taken in float32
LOGIT_COPIES = 2  # the logits and the processed scores


@dataclass(frozen=True)
class ModelFootprint:
    """What a model takes on the device to generate, in bytes."""

    weights: int  # every parameter, in the dtype it is loaded in
    kv_per_token: int  # keys and values of one token of one sequence, all layers
    prefill_per_token: int  # transient activations of one prompt token in one layer
    logits_per_sequence: int  # one step's logits and scores for one sequence

    def sequence_bytes(self, prompt_tokens: int, new_tokens: int) -> int:
        """One sequence of a batch: its cache, its prompt's activations, its logits."""
        return (
            self.kv_per_token * (prompt_tokens + new_tokens)
            + self.prefill_per_token * prompt_tokens
            + self.logits_per_sequence
        )


def footprint_from_config(config: Any, *, parameters: int, element_bytes: int) -> ModelFootprint:
    """From a transformers config (widths it leaves out take the usual defaults).

    Prefill activations of a layer, per token: the residual stream, the normalised input, q and
    the attention output (4 × hidden), and the MLP's gate, up and their product (3 ×
    intermediate); one layer at a time is alive.
    """
    hidden, heads = config.hidden_size, config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    intermediate = getattr(config, "intermediate_size", None) or 4 * hidden
    return ModelFootprint(
        weights=parameters * element_bytes,
        kv_per_token=2 * config.num_hidden_layers * kv_heads * head_dim * element_bytes,
        prefill_per_token=(4 * hidden + 3 * intermediate) * element_bytes,
        logits_per_sequence=config.vocab_size * LOGIT_BYTES * LOGIT_COPIES,
    )


def model_footprint(model_dir: str | Path, *, element_bytes: int) -> ModelFootprint:
    """The footprint of the model in ``model_dir``, without loading its weights: the model is
    built on the meta device to count its parameters."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(model_dir))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    parameters = sum(p.numel() for p in model.parameters())
    return footprint_from_config(
        config.get_text_config(), parameters=parameters, element_bytes=element_bytes
    )


def unquantised_fits(footprint: ModelFootprint, budget_bytes: int) -> bool:
    """Whether the weights as they are (no NF4) leave room for a batch of ``MIN_FAST_BATCH``."""
    batch = MIN_FAST_BATCH * footprint.sequence_bytes(REFERENCE_TOKENS, 0)
    return footprint.weights + batch <= budget_bytes


def batch_size_for(
    footprint: ModelFootprint,
    *,
    free_bytes: int,
    prompt_tokens: int,
    new_tokens: int,
    prompts: int,
    cap: int = MAX_BATCH,
) -> int:
    """As many sequences as ``free_bytes`` (memory left once the weights are loaded, headroom
    already taken off) holds, at most ``cap`` and never more than there are prompts; at least
    one, so that a model that barely fits still answers."""
    per_sequence = footprint.sequence_bytes(prompt_tokens, new_tokens)
    return max(1, min(cap, prompts, free_bytes // per_sequence))
