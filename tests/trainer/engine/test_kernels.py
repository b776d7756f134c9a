"""The lean Functions against the plain torch / Hugging Face computations they replace."""

import copy

import pytest
import torch
import torch.nn.functional as F

from trainer.engine.data import IGNORE_INDEX
from trainer.engine.kernels import (
    TRAINABLE_WEIGHT_ERROR,
    causal_lm_loss,
    chunked_cross_entropy,
    default_chunk_tokens,
    patch_llama_modules,
    rms_norm,
    swiglu,
)
from trainer.engine.toy import tiny_lora_llama

# (rtol, atol) per dtype: fp32 tight; bf16 has 8 bits of mantissa.
TOLERANCE = {torch.float32: (1e-5, 1e-6), torch.bfloat16: (2e-2, 2e-2)}
CPU_BF16 = {"device_type": "cpu", "dtype": torch.bfloat16}


def assert_close(actual, expected, dtype):
    rtol, atol = TOLERANCE[dtype]
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


def leaf(tensor):
    return tensor.detach().clone().requires_grad_(True)


def value_and_grads(function, *inputs, upstream=None):
    """function(*inputs) and its gradients wrt each input that requires grad."""
    output = function(*inputs)
    output.backward(upstream if upstream is not None else torch.ones_like(output))
    return output.detach(), [x.grad for x in inputs if x.requires_grad]


def saved_bytes(function):
    """Bytes of the distinct storages that autograd saves for backward while running function.

    The output, and with it every saved tensor, is alive until the sum is taken, so no two
    saved storages can share an address by chance.
    """
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        output = function()
    total = sum(storages.values())
    del output
    return total


# --- chunked cross-entropy -------------------------------------------------------------------


def reference_cross_entropy(hidden, weight, labels):
    logits = (hidden @ weight.to(hidden.dtype).T).float()
    return F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="sum")


def cross_entropy_inputs(tokens=37, hidden_size=16, vocab=50, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(tokens, hidden_size, generator=generator).to(dtype)
    weight = torch.randn(vocab, hidden_size, generator=generator).to(dtype)
    labels = torch.randint(0, vocab, (tokens,), generator=generator)
    labels[::3] = IGNORE_INDEX
    return hidden, weight, labels


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("chunk_tokens", [1, 5, 8, 37, 1000])  # 1000 > N: a single chunk
def test_chunked_cross_entropy_matches_cross_entropy_and_its_gradient(dtype, chunk_tokens):
    hidden, weight, labels = cross_entropy_inputs(dtype=dtype)
    upstream = torch.tensor(0.37)  # a loss divided by a token count, as training does
    expected, (expected_grad,) = value_and_grads(
        lambda h: reference_cross_entropy(h, weight, labels), leaf(hidden), upstream=upstream
    )
    actual, (actual_grad,) = value_and_grads(
        lambda h: chunked_cross_entropy(h, weight, labels, chunk_tokens=chunk_tokens),
        leaf(hidden),
        upstream=upstream,
    )
    assert actual.dtype == torch.float32 and actual_grad.dtype == dtype
    assert_close(actual, expected, dtype)
    assert_close(actual_grad, expected_grad, dtype)


def test_chunked_cross_entropy_gives_ignored_rows_no_loss_and_no_gradient():
    hidden, weight, labels = cross_entropy_inputs()
    labels[:] = IGNORE_INDEX
    labels[4] = 7
    loss, (grad,) = value_and_grads(
        lambda h: chunked_cross_entropy(h, weight, labels, chunk_tokens=4), leaf(hidden)
    )
    assert_close(loss, reference_cross_entropy(hidden, weight, labels), torch.float32)
    assert grad[4].abs().sum() > 0
    assert torch.count_nonzero(grad[torch.arange(len(labels)) != 4]) == 0


def test_chunked_cross_entropy_under_autocast_matches_autocast_reference():
    """Under bf16 autocast a bf16 hidden and an fp32 output layer meet in bf16, as autocast
    would do for the whole logits."""
    hidden, weight, labels = cross_entropy_inputs(dtype=torch.bfloat16)
    weight = weight.float()
    with torch.autocast(**CPU_BF16):
        expected, (expected_grad,) = value_and_grads(
            lambda h: F.cross_entropy(
                (h @ weight.T).float(), labels, ignore_index=IGNORE_INDEX, reduction="sum"
            ),
            leaf(hidden),
        )
        actual, (actual_grad,) = value_and_grads(
            lambda h: chunked_cross_entropy(h, weight, labels, chunk_tokens=6), leaf(hidden)
        )
    assert_close(actual, expected, torch.bfloat16)
    assert_close(actual_grad, expected_grad, torch.bfloat16)


def test_chunked_cross_entropy_computes_in_the_hidden_dtype_even_under_autocast():
    hidden, weight, labels = cross_entropy_inputs()
    expected = reference_cross_entropy(hidden, weight, labels)
    with torch.autocast(**CPU_BF16):
        actual = chunked_cross_entropy(hidden, weight, labels, chunk_tokens=6)
    assert_close(actual, expected, torch.float32)


def test_chunked_cross_entropy_refuses_a_trainable_output_layer():
    hidden, weight, labels = cross_entropy_inputs()
    with pytest.raises(ValueError, match=TRAINABLE_WEIGHT_ERROR):
        chunked_cross_entropy(hidden, leaf(weight), labels)


def test_default_chunk_holds_about_a_quarter_gibibyte_of_fp32_logits():
    rows = default_chunk_tokens(128256)
    assert rows % 64 == 0
    assert 200 * 2**20 < rows * 128256 * 4 <= 256 * 2**20
    assert default_chunk_tokens(2**30) == 1


def test_causal_lm_loss_predicts_each_label_from_the_position_before_it():
    generator = torch.Generator().manual_seed(1)
    hidden = torch.randn(2, 9, 16, generator=generator)
    weight = torch.randn(40, 16, generator=generator)
    labels = torch.randint(0, 40, (2, 9), generator=generator)
    labels[0, :4] = IGNORE_INDEX
    logits = hidden @ weight.T
    expected = F.cross_entropy(
        logits[:, :-1].reshape(-1, 40), labels[:, 1:].reshape(-1), reduction="sum"
    )
    assert_close(causal_lm_loss(hidden, weight, labels, chunk_tokens=5), expected, torch.float32)


def test_chunked_cross_entropy_saves_less_than_autograd():
    hidden, weight, labels = cross_entropy_inputs(tokens=64, vocab=200, dtype=torch.bfloat16)
    hidden = leaf(hidden)
    assert saved_bytes(
        lambda: chunked_cross_entropy(hidden, weight, labels, chunk_tokens=16)
    ) < saved_bytes(lambda: reference_cross_entropy(hidden, weight, labels))


# --- RMSNorm ---------------------------------------------------------------------------------


def reference_rms_norm(hidden, weight, eps):
    """LlamaRMSNorm.forward, as transformers writes it."""
    hidden32 = hidden.float()
    variance = hidden32.pow(2).mean(-1, keepdim=True)
    return weight * (hidden32 * torch.rsqrt(variance + eps)).to(hidden.dtype)


@pytest.mark.parametrize(
    ("dtype", "weight_dtype"),
    [(torch.float32, torch.float32), (torch.bfloat16, torch.bfloat16), (torch.bfloat16, None)],
)  # None: fp32 weight on bf16 input, as after peft's prepare_model_for_kbit_training
@pytest.mark.parametrize("train_weight", [False, True])
def test_rms_norm_matches_llama_rms_norm_and_its_gradients(dtype, weight_dtype, train_weight):
    generator = torch.Generator().manual_seed(2)
    hidden = (3 * torch.randn(2, 5, 32, generator=generator)).to(dtype)
    weight = (1 + 0.1 * torch.randn(32, generator=generator)).to(weight_dtype or torch.float32)
    weight.requires_grad_(train_weight)
    upstream = torch.randn(2, 5, 32, generator=generator)
    results = []
    for function in (reference_rms_norm, rms_norm):
        inputs = (leaf(hidden), leaf(weight) if train_weight else weight, 1e-5)
        output = function(*inputs)
        output.backward(upstream.to(output.dtype))
        results.append((output.detach(), [x.grad for x in inputs[:2] if x.requires_grad]))
    (expected, expected_grads), (actual, actual_grads) = results
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)  # the forward is exact
    assert len(actual_grads) == len(expected_grads) == 1 + train_weight
    for actual_grad, expected_grad in zip(actual_grads, expected_grads, strict=True):
        assert actual_grad.dtype == expected_grad.dtype
        assert_close(actual_grad, expected_grad, dtype)


def test_rms_norm_under_autocast_matches_llama_rms_norm():
    hidden = torch.randn(4, 32).bfloat16()
    weight = torch.rand(32)
    with torch.autocast(**CPU_BF16):
        expected, (expected_grad,) = value_and_grads(
            lambda h: reference_rms_norm(h, weight, 1e-6), leaf(hidden)
        )
        actual, (actual_grad,) = value_and_grads(lambda h: rms_norm(h, weight, 1e-6), leaf(hidden))
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    assert_close(actual_grad, expected_grad, torch.bfloat16)


def test_rms_norm_saves_less_than_autograd_for_bf16_input():
    hidden = leaf(torch.randn(8, 64).bfloat16())
    weight = torch.ones(64, dtype=torch.bfloat16)
    assert saved_bytes(lambda: rms_norm(hidden, weight, 1e-6)) < saved_bytes(
        lambda: reference_rms_norm(hidden, weight, 1e-6)
    )


# --- SwiGLU ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_swiglu_matches_silu_times_up_and_its_gradients(dtype):
    generator = torch.Generator().manual_seed(3)
    gate, up = (4 * torch.randn(2, 3, 48, generator=generator)).to(dtype).unbind(0)[:2]
    upstream = torch.randn(3, 48, generator=generator).to(dtype)
    expected, expected_grads = value_and_grads(
        lambda g, u: F.silu(g) * u, leaf(gate), leaf(up), upstream=upstream
    )
    actual, actual_grads = value_and_grads(swiglu, leaf(gate), leaf(up), upstream=upstream)
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    for actual_grad, expected_grad in zip(actual_grads, expected_grads, strict=True):
        assert_close(actual_grad, expected_grad, dtype)


def test_swiglu_passes_gradcheck_in_double_precision():
    generator = torch.Generator().manual_seed(4)
    gate, up = (leaf(torch.randn(4, 6, generator=generator).double()) for _ in range(2))
    assert torch.autograd.gradcheck(swiglu, (gate, up))


def test_swiglu_with_a_frozen_up_gives_the_gate_its_gradient():
    gate, up = torch.randn(5), torch.randn(5)
    _, (expected,) = value_and_grads(lambda g: F.silu(g) * up, leaf(gate))
    _, (actual,) = value_and_grads(lambda g: swiglu(g, up), leaf(gate))
    assert_close(actual, expected, torch.float32)


def test_swiglu_saves_less_than_autograd():
    gate, up = leaf(torch.randn(8, 64)), leaf(torch.randn(8, 64))
    assert saved_bytes(lambda: swiglu(gate, up)) < saved_bytes(lambda: F.silu(gate) * up)


# --- patching a model ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lora_llama():
    """A tiny random Llama with random (non-zero) LoRA on every linear layer."""
    return tiny_lora_llama(layers=2)


@pytest.fixture(scope="module")
def batch():
    generator = torch.Generator().manual_seed(5)
    input_ids = torch.randint(0, 128, (2, 24), generator=generator)
    labels = input_ids.clone()
    labels[:, :10] = IGNORE_INDEX
    return input_ids, labels


def hf_loss(model, input_ids, labels):
    logits = model(input_ids=input_ids).logits
    return F.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.shape[-1]),
        labels[:, 1:].reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )


def lean_loss(model, input_ids, labels):
    base = model.get_base_model()
    hidden = base.model(input_ids=input_ids).last_hidden_state
    return causal_lm_loss(hidden, base.lm_head.weight, labels, chunk_tokens=7)


def loss_and_lora_grads(model, loss_function, batch, autocast=False):
    model.zero_grad()
    with torch.autocast(**CPU_BF16, enabled=autocast):
        loss = loss_function(model, *batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.detach(), grads


def assert_same_gradients(actual, expected, atol):
    """Each gradient within atol of the reference, relative to the reference's largest entry."""
    assert actual.keys() == expected.keys()
    for name, reference in expected.items():
        scale = reference.abs().max()
        torch.testing.assert_close(actual[name] / scale, reference / scale, rtol=0, atol=atol)


def patched_copy(model):
    patched = copy.deepcopy(model)
    # 2 layers x (2 norms + 1 MLP) + the final norm
    assert patch_llama_modules(patched) == 7
    return patched


@pytest.mark.parametrize("autocast", [False, True])
def test_patched_model_gives_the_same_loss_and_lora_gradients(lora_llama, batch, autocast):
    rtol, atol = (5e-2, 5e-2) if autocast else (1e-4, 1e-5)
    expected, expected_grads = loss_and_lora_grads(lora_llama, hf_loss, batch, autocast)
    patched = patched_copy(lora_llama)
    actual, actual_grads = loss_and_lora_grads(patched, lean_loss, batch, autocast)
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)
    assert len(actual_grads) == 2 * 7 * 2  # A and B of 7 linear layers in 2 layers
    assert_same_gradients(actual_grads, expected_grads, atol)


def test_patching_keeps_the_state_dict_and_a_second_patch_changes_nothing(lora_llama):
    patched = patched_copy(lora_llama)
    assert patched.state_dict().keys() == lora_llama.state_dict().keys()
    assert patch_llama_modules(patched) == 0


def test_patched_model_saves_fewer_bytes_for_backward(lora_llama, batch):
    model = copy.deepcopy(lora_llama).to(torch.bfloat16)
    before = saved_bytes(lambda: hf_loss(model, *batch))
    patch_llama_modules(model)
    assert saved_bytes(lambda: lean_loss(model, *batch)) < before


SMALL = {
    "vocab_size": 32,
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 8,
}


@pytest.mark.parametrize("family", ["Mistral", "Qwen2", "Qwen3"])
def test_every_norm_and_mlp_of_llama_like_families_is_patched_with_the_same_output(family):
    import transformers

    torch.manual_seed(0)
    config = getattr(transformers, f"{family}Config")(**SMALL)
    model = getattr(transformers, f"{family}ForCausalLM")(config)
    input_ids = torch.randint(0, 32, (1, 6))
    expected_logits = model(input_ids=input_ids).logits
    kinds = [type(m).__name__ for m in model.modules()]
    assert patch_llama_modules(model) == sum(kind.endswith(("RMSNorm", "MLP")) for kind in kinds)
    torch.testing.assert_close(model(input_ids=input_ids).logits, expected_logits, rtol=0, atol=0)


def test_gemma_style_norms_and_non_silu_mlps_are_left_alone():
    from transformers import GemmaConfig, GemmaForCausalLM, LlamaConfig, LlamaForCausalLM

    assert patch_llama_modules(GemmaForCausalLM(GemmaConfig(**SMALL))) == 0
    gelu_llama = LlamaForCausalLM(LlamaConfig(**SMALL, hidden_act="gelu"))
    assert patch_llama_modules(gelu_llama) == 3  # the norms only


def test_patched_4bit_model_gives_the_same_loss_and_lora_gradients(tiny_model_dir, batch):
    """The QLoRA case: bitsandbytes NF4 linear layers (CPU backend) under the LoRA layers."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    def load():
        quantization = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32
        )
        base = AutoModelForCausalLM.from_pretrained(
            tiny_model_dir, quantization_config=quantization, device_map={"": "cpu"}
        )
        torch.manual_seed(0)
        lora = LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False)
        return get_peft_model(base, lora)

    reference = load()
    vocab = reference.config.vocab_size
    input_ids, labels = batch
    in_vocabulary = (input_ids % vocab, labels.where(labels == IGNORE_INDEX, labels % vocab))
    expected, expected_grads = loss_and_lora_grads(reference, hf_loss, in_vocabulary)
    patched = load()
    assert patch_llama_modules(patched) == 7
    actual, actual_grads = loss_and_lora_grads(patched, lean_loss, in_vocabulary)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)
    assert_same_gradients(actual_grads, expected_grads, 1e-5)
