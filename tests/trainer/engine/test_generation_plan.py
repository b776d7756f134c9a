"""The memory arithmetic of generation, against sizes worked out by hand."""

import pytest

from trainer.engine import generation_plan as plan
from trainer.engine.generation_plan import ModelFootprint


class TinyConfig:
    """The widths of tests/trainer/tiny_llm.py's model."""

    hidden_size = 32
    intermediate_size = 64
    num_hidden_layers = 2
    num_attention_heads = 4
    num_key_value_heads = 2
    vocab_size = 45


def test_footprint_from_config_counts_cache_activations_and_logits():
    footprint = plan.footprint_from_config(TinyConfig(), parameters=1000, element_bytes=4)
    # keys and values × 2 layers × 2 kv heads × head width 8 × 4 bytes
    assert footprint.kv_per_token == 2 * 2 * 2 * 8 * 4 == 256
    # (4 × 32 + 3 × 64) × 4 bytes
    assert footprint.prefill_per_token == 1280
    assert footprint.logits_per_sequence == 45 * 4 * 2
    assert footprint.weights == 4000


def test_a_sequence_holds_its_whole_cache_and_its_prompts_activations():
    footprint = ModelFootprint(
        weights=0, kv_per_token=10, prefill_per_token=3, logits_per_sequence=7
    )
    assert footprint.sequence_bytes(prompt_tokens=20, new_tokens=5) == 10 * 25 + 3 * 20 + 7


FOOTPRINT = ModelFootprint(weights=0, kv_per_token=10, prefill_per_token=0, logits_per_sequence=0)
SEQUENCE = 10 * (30 + 70)  # bytes of one sequence of 30 prompt and 70 new tokens


@pytest.mark.parametrize(
    ("free_bytes", "prompts", "cap", "expected"),
    [
        (3 * SEQUENCE, 100, 128, 3),  # as many as fit
        (3 * SEQUENCE + SEQUENCE - 1, 100, 128, 3),  # a partial sequence does not count
        (1000 * SEQUENCE, 100, 128, 100),  # never more than there are prompts
        (1000 * SEQUENCE, 500, 128, 128),  # never more than the cap
        (0, 100, 128, 1),  # a model that barely fits still answers, one at a time
    ],
)
def test_batch_size_is_what_the_free_memory_holds(free_bytes, prompts, cap, expected):
    size = plan.batch_size_for(
        FOOTPRINT,
        free_bytes=free_bytes,
        prompt_tokens=30,
        new_tokens=70,
        prompts=prompts,
        cap=cap,
    )
    assert size == expected


def test_unquantised_weights_fit_only_with_room_for_the_minimum_batch():
    footprint = ModelFootprint(
        weights=5000, kv_per_token=2, prefill_per_token=0, logits_per_sequence=0
    )
    needed = 5000 + plan.MIN_FAST_BATCH * 2 * plan.REFERENCE_TOKENS
    assert plan.unquantised_fits(footprint, needed)
    assert not plan.unquantised_fits(footprint, needed - 1)


def test_model_footprint_counts_the_parameters_of_the_saved_model(tiny):
    import torch
    from transformers import AutoModelForCausalLM

    model_dir, _ = tiny
    footprint = plan.model_footprint(model_dir, element_bytes=2)
    loaded = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    assert footprint.weights == sum(p.numel() * p.element_size() for p in loaded.parameters())
    assert footprint.kv_per_token == 2 * 2 * 2 * 8 * 2
