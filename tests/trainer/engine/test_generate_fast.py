"""The fast generation path (adapter merged into the weights, static cache, batch from free
memory) against the plain path, on the tiny random Llama and LoRA adapter built in the test.

On CPU in float32 a merged weight differs from the separate product by rounding only, so greedy
outputs must be equal; transformers compiles the static-cache step only on CUDA, the rest of the
path runs here."""

import pytest

from tests.trainer.tiny_llm import CONVERSATIONS
from trainer.engine import generate as generation
from trainer.engine import generation_plan, modeling
from trainer.engine.generate import DecodingConfig

GREEDY = DecodingConfig(max_new_tokens=12)


@pytest.fixture(scope="module")
def plain(tiny):
    return generation.load_model(tiny[0], adapter_dir=tiny[1], device="cpu")


@pytest.fixture
def fast(tiny):
    return generation.load_model(tiny[0], adapter_dir=tiny[1], device="cpu", lora="merged")


def answers(results):
    return [(r.text, r.token_count) for r in results]


@pytest.mark.parametrize("use_adapter", [True, False])
@pytest.mark.parametrize("batch_size", [2, None])  # 2: the last batch is filled up
def test_fast_path_answers_like_the_plain_path(plain, fast, use_adapter, batch_size):
    expected = generation.generate(plain, CONVERSATIONS, decoding=GREEDY, use_adapter=use_adapter)
    got = generation.generate(
        fast, CONVERSATIONS, decoding=GREEDY, use_adapter=use_adapter, batch_size=batch_size
    )
    assert answers(got) == answers(expected)


def test_base_after_adapter_answers_like_the_base(plain, fast):
    generation.generate(fast, CONVERSATIONS, decoding=GREEDY, use_adapter=True)
    base = generation.generate(fast, CONVERSATIONS, decoding=GREEDY, use_adapter=False)
    expected = generation.generate(plain, CONVERSATIONS, decoding=GREEDY, use_adapter=False)
    assert answers(base) == answers(expected)


def test_base_weights_come_back_bit_for_bit_after_a_bf16_merge(tiny):
    import torch

    loaded = generation.load_model(
        tiny[0], adapter_dir=tiny[1], device="cpu", dtype="bfloat16", lora="merged"
    )
    params = generation._merged_params(loaded.model)
    before = [p.detach().clone() for p in params]
    one = CONVERSATIONS[:1]
    decoding = DecodingConfig(max_new_tokens=2)

    generation.generate(loaded, one, decoding=decoding, use_adapter=True)
    assert not all(torch.equal(p, b) for p, b in zip(params, before, strict=True))
    generation.generate(loaded, one, decoding=decoding, use_adapter=False)
    assert all(torch.equal(p, b) for p, b in zip(params, before, strict=True))


def batch_sizes(loaded, **kwargs):
    sizes = []
    generation.generate(
        loaded,
        CONVERSATIONS,
        decoding=GREEDY,
        use_adapter=True,
        on_batch=lambda indices, batch: sizes.append(len(indices)),
        **kwargs,
    )
    return sizes


def test_fast_path_sizes_its_batches_from_free_memory(fast, monkeypatch):
    config = fast.model.config
    footprint = generation_plan.footprint_from_config(config, parameters=0, element_bytes=4)
    longest = max(
        len(fast.tokenizer(text, add_special_tokens=False)["input_ids"])
        for text in generation.render_prompts(fast.tokenizer, CONVERSATIONS)
    )
    two = 2 * footprint.sequence_bytes(longest, GREEDY.max_new_tokens)
    monkeypatch.setattr(modeling, "memory_budget", lambda device: two + 1)
    assert batch_sizes(fast) == [2, 2, 1]


def test_plain_path_keeps_its_default_batch(plain):
    assert len(CONVERSATIONS) <= generation.DEFAULT_BATCH_SIZE
    assert batch_sizes(plain) == [len(CONVERSATIONS)]


def test_fast_path_records_the_merged_adapter():
    precision = generation.resolve_precision("cpu", lora="merged")
    assert precision.as_dict() == {"quantization": "none", "dtype": "float32", "lora": "merged"}


@pytest.fixture
def cuda_with(monkeypatch, tiny):
    """resolve_precision on a pretend CUDA device whose budget is ``spare`` bytes beyond what the
    tiny model's bf16 weights and the minimum batch need."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    footprint = generation_plan.model_footprint(tiny[0], element_bytes=2)
    needed = footprint.weights + generation_plan.MIN_FAST_BATCH * footprint.sequence_bytes(
        generation_plan.REFERENCE_TOKENS, 0
    )

    def resolve(spare):
        monkeypatch.setattr(modeling, "memory_budget", lambda device: needed + spare)
        return generation.resolve_precision("cuda", model_dir=tiny[0])

    return resolve


def test_cuda_takes_the_fast_path_when_bf16_fits(cuda_with):
    precision = cuda_with(0)
    assert (precision.quantization, precision.dtype, precision.lora) == (
        "none",
        "bfloat16",
        "merged",
    )


def test_cuda_falls_back_to_nf4_when_bf16_does_not_fit(cuda_with):
    precision = cuda_with(-1)
    assert (precision.quantization, precision.lora) == ("nf4", "separate")
    assert precision.as_dict() == {"quantization": "nf4", "dtype": "bfloat16"}


def test_an_adapter_is_never_merged_into_nf4():
    with pytest.raises(ValueError, match="cannot be merged into NF4"):
        generation.resolve_precision("cpu", "nf4", lora="merged")
    with pytest.raises(ValueError, match="lora must be one of"):
        generation.resolve_precision("cpu", lora="folded")


@pytest.mark.slow
def test_compiled_decoding_answers_like_the_plain_path(plain, fast, monkeypatch):
    """transformers compiles the static-cache step only on CUDA; its testing flag compiles it
    here too (inductor without CUDA graphs), through the base/adapter switches in both orders."""
    import torch
    from transformers import CompileConfig

    uncompiled = generation._generation_config

    def compiled(loaded, decoding, cache_tokens=None, **kwargs):
        config = uncompiled(loaded, decoding, cache_tokens, **kwargs)
        config.compile_config = CompileConfig(mode="default")
        config.compile_config._compile_all_devices = True
        return config

    monkeypatch.setattr(generation, "_generation_config", compiled)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    for use_adapter in (False, True, False):
        expected = generation.generate(
            plain, CONVERSATIONS, decoding=GREEDY, use_adapter=use_adapter
        )
        got = generation.generate(
            fast, CONVERSATIONS, decoding=GREEDY, use_adapter=use_adapter, batch_size=2
        )
        assert answers(got) == answers(expected)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # it did compile

    torch._dynamo.utils.counters.clear()  # compiled=False: the same answers, nothing compiled
    eager = generation.generate(
        fast, CONVERSATIONS, decoding=GREEDY, use_adapter=False, batch_size=3, compiled=False
    )
    assert answers(eager) == answers(expected)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 0
    torch._dynamo.reset()


def test_a_failed_compilation_falls_back_to_uncompiled_decoding(plain, fast, monkeypatch):
    """A compiler error on the first compiled call costs speed, not the run: the batch is made
    again uncompiled, with a warning, and the answers are the plain path's."""
    expected = generation.generate(plain, CONVERSATIONS, decoding=GREEDY, use_adapter=True)
    real_generate = type(fast.model).generate
    calls = []

    def compiler_fails(self, *args, generation_config, **kwargs):
        calls.append(generation_config.disable_compile)
        if not generation_config.disable_compile:
            raise RuntimeError("inductor: backend compiler failed")
        return real_generate(self, *args, generation_config=generation_config, **kwargs)

    monkeypatch.setattr(type(fast.model), "generate", compiler_fails)
    with pytest.warns(RuntimeWarning, match="decoding uncompiled"):
        got = generation.generate(fast, CONVERSATIONS, decoding=GREEDY, use_adapter=True)
    assert answers(got) == answers(expected)
    assert calls[:2] == [False, True] and all(calls[1:])  # compiled once, then never again


def test_an_error_that_is_not_the_compiler_still_raises(fast, monkeypatch):
    def always_fails(self, *args, **kwargs):
        raise RuntimeError("the prompt is broken")

    monkeypatch.setattr(type(fast.model), "generate", always_fails)
    with pytest.warns(RuntimeWarning), pytest.raises(RuntimeError, match="prompt is broken"):
        generation.generate(fast, CONVERSATIONS, decoding=GREEDY, use_adapter=True)
