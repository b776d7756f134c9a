"""Batched generation with a tiny random Llama and a random LoRA adapter built in the test."""

import pytest

from tests.trainer.tiny_llm import CONVERSATIONS, build_tiny_llm
from trainer.engine import generate as generation
from trainer.engine.generate import DecodingConfig, GeneratedText
from trainer.engine.modeling import compute_dtype

GREEDY = DecodingConfig(max_new_tokens=12)


@pytest.fixture(scope="module")
def loaded(tiny):
    model_dir, adapter_dir = tiny
    return generation.load_model(model_dir, adapter_dir=adapter_dir, device="cpu")


def texts(results: list[GeneratedText]) -> list[str]:
    return [r.text for r in results]


@pytest.mark.parametrize("use_adapter", [False, True])
def test_batched_greedy_equals_one_at_a_time(loaded, use_adapter):
    batched = generation.generate(
        loaded, CONVERSATIONS, decoding=GREEDY, use_adapter=use_adapter, batch_size=4
    )
    single = [
        generation.generate(loaded, [c], decoding=GREEDY, use_adapter=use_adapter, batch_size=1)[0]
        for c in CONVERSATIONS
    ]
    assert texts(batched) == texts(single)
    assert [r.token_count for r in batched] == [r.token_count for r in single]


def test_answers_come_back_in_the_callers_order(loaded):
    forward = generation.generate(loaded, CONVERSATIONS, decoding=GREEDY, use_adapter=True)
    backward = generation.generate(loaded, CONVERSATIONS[::-1], decoding=GREEDY, use_adapter=True)
    assert texts(backward) == texts(forward)[::-1]


def test_adapter_on_and_off_give_different_answers(loaded):
    base = generation.generate(loaded, CONVERSATIONS, decoding=GREEDY, use_adapter=False)
    adapted = generation.generate(loaded, CONVERSATIONS, decoding=GREEDY, use_adapter=True)
    assert texts(base) != texts(adapted)


def test_disabled_adapter_answers_like_the_base_model_alone(tiny, loaded):
    model_dir, _ = tiny
    base_only = generation.load_model(model_dir, device="cpu")
    alone = generation.generate(base_only, CONVERSATIONS, decoding=GREEDY, use_adapter=False)
    disabled = generation.generate(loaded, CONVERSATIONS, decoding=GREEDY, use_adapter=False)
    assert texts(disabled) == texts(alone)


def test_token_counts_stop_at_max_new_tokens_and_latency_is_recorded(loaded):
    decoding = DecodingConfig(max_new_tokens=3)
    results = generation.generate(loaded, CONVERSATIONS, decoding=decoding, use_adapter=True)
    assert all(0 <= r.token_count <= 3 for r in results)
    assert all(r.latency_ms > 0 for r in results)


def test_token_count_matches_the_decoded_words(loaded):
    # The tiny tokenizer has one token per word, so the count is checkable from the text.
    results = generation.generate(loaded, CONVERSATIONS, decoding=GREEDY, use_adapter=True)
    for result in results:
        words = [w for w in result.text.split() if w]
        assert len(words) <= result.token_count


def test_sampling_with_a_seed_is_reproducible(loaded):
    sampling = DecodingConfig(max_new_tokens=8, temperature=1.5, top_p=0.9, seed=7)
    first = generation.generate(loaded, CONVERSATIONS, decoding=sampling, use_adapter=True)
    second = generation.generate(loaded, CONVERSATIONS, decoding=sampling, use_adapter=True)
    assert texts(first) == texts(second)


def test_on_batch_sees_every_prompt_once(loaded):
    seen: list[int] = []
    generation.generate(
        loaded,
        CONVERSATIONS,
        decoding=GREEDY,
        use_adapter=False,
        batch_size=2,
        on_batch=lambda indices, batch: seen.extend(indices),
    )
    assert sorted(seen) == list(range(len(CONVERSATIONS)))


def test_asking_for_the_adapter_without_one_is_an_error(tiny):
    base_only = generation.load_model(tiny[0], device="cpu")
    with pytest.raises(ValueError, match="loaded without an adapter"):
        generation.generate(base_only, CONVERSATIONS, decoding=GREEDY, use_adapter=True)


def test_a_tokenizer_without_chat_template_is_refused(tmp_path):
    model_dir = build_tiny_llm(tmp_path / "model")
    config = model_dir / "tokenizer_config.json"
    (model_dir / "chat_template.jinja").unlink(missing_ok=True)
    config.write_text(config.read_text().replace('"chat_template"', '"unused_template"'))
    with pytest.raises(ValueError, match="no chat template"):
        generation.load_tokenizer(model_dir)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"temperature": -1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
    ],
)
def test_decoding_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DecodingConfig(**kwargs)


def test_cpu_defaults_to_unquantised_float32_and_cuda_without_a_model_to_nf4(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert generation.resolve_precision("cpu").as_dict() == {
        "quantization": "none",
        "dtype": "float32",
    }
    assert generation.resolve_precision("cuda").as_dict() == {
        "quantization": "nf4",
        "dtype": "bfloat16",
    }
    with pytest.raises(ValueError, match="quantization must be one of"):
        generation.resolve_precision("cpu", "int8")
    with pytest.raises(ValueError, match="dtype must be one of"):
        generation.resolve_precision("cpu", dtype="float8")


def test_a_gpu_without_bf16_generates_in_the_dtype_it_was_trained_in(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    precision = generation.resolve_precision("cuda")
    assert precision.dtype == "float16"
    assert getattr(torch, precision.dtype) == compute_dtype("cuda")


@pytest.mark.slow
def test_smollm2_with_a_random_adapter(tmp_path_factory, smollm2_dir):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model_dir = smollm2_dir
    torch.manual_seed(0)
    lora = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    adapter_dir = tmp_path_factory.mktemp("adapter")
    get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir), lora).save_pretrained(
        adapter_dir
    )
    loaded = generation.load_model(model_dir, adapter_dir=adapter_dir, device="cpu")
    questions = [
        [{"role": "user", "content": "What is the capital of France?"}],
        [{"role": "user", "content": "Name a primary colour."}],
        [{"role": "user", "content": "How many legs does a spider have?"}],
    ]
    decoding = DecodingConfig(max_new_tokens=16)
    base = generation.generate(loaded, questions, decoding=decoding, use_adapter=False)
    adapted = generation.generate(loaded, questions, decoding=decoding, use_adapter=True)
    assert "Paris" in base[0].text
    assert texts(base) != texts(adapted)
    assert all(0 < r.token_count <= 16 for r in base)


def test_a_base_too_big_for_the_device_streams_and_answers_the_same(tiny, monkeypatch):
    from trainer.engine import modeling
    from trainer.engine.activations import decoder_layers, layer_modes

    model_dir, adapter_dir = tiny
    nf4 = {"adapter_dir": adapter_dir, "device": "cpu", "quantization": "nf4"}
    resident = generation.load_model(model_dir, **nf4)
    # The same CPU kernels as the streamed layers, which never take bitsandbytes' repacked one.
    modeling.keep_cpu_weights_differentiable(resident.model)
    monkeypatch.setattr(modeling, "memory_budget", lambda device: 1024)
    streamed = generation.load_model(model_dir, **nf4)
    layers = decoder_layers(streamed.model)
    assert layer_modes(layers) == ["stream"] * len(layers)
    for use_adapter in (False, True):
        expected = generation.generate(
            resident, CONVERSATIONS, decoding=GREEDY, use_adapter=use_adapter
        )
        got = generation.generate(streamed, CONVERSATIONS, decoding=GREEDY, use_adapter=use_adapter)
        assert texts(got) == texts(expected)
