import pytest

from tests.trainer.engine.tiny import colour_conversation
from trainer.engine.config import TrainConfig
from trainer.engine.data import collate, tokenize_split
from trainer.engine.hooks import TrainHooks
from trainer.engine.modeling import load_qlora_model, use_gradient_checkpointing

LINEAR_LAYERS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


@pytest.fixture
def model(tiny_model_dir):
    return load_qlora_model(tiny_model_dir, TrainConfig(rank=4, dropout=0.0), "cpu")


def test_base_weights_are_nf4_with_double_quantisation_and_float32_compute_on_cpu(model):
    import torch
    from bitsandbytes.nn import Linear4bit

    quantised = [m for m in model.modules() if isinstance(m, Linear4bit)]
    assert len(quantised) == 2 * len(LINEAR_LAYERS)
    for layer in quantised:
        state = layer.weight.quant_state
        assert state.quant_type == "nf4" and state.nested  # nested = double quantisation
        assert layer.compute_dtype == torch.float32


def test_lora_sits_on_every_linear_layer_and_the_model_is_in_training_mode(model):
    adapted = {name.split(".")[-1] for name, m in model.named_modules() if hasattr(m, "lora_A")}
    assert adapted == LINEAR_LAYERS
    assert model.training
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)


def test_gradient_checkpointing_is_on_for_cuda_and_off_for_cpu_unless_asked(tiny_model_dir):
    assert use_gradient_checkpointing(TrainConfig(), "cuda:0")
    assert not use_gradient_checkpointing(TrainConfig(), "cpu")
    config = TrainConfig(rank=4, gradient_checkpointing="on")
    model = load_qlora_model(tiny_model_dir, config, "cpu")
    assert model.get_base_model().is_gradient_checkpointing and model.training


def test_a_validation_pass_does_not_change_the_training_gradients(model, tokenizer):
    """bitsandbytes repacks 4-bit weights for a CPU inference kernel without autograd the
    first time a layer runs in eval mode; training must not be affected by validation."""
    from trainer.engine.distributed import DistContext
    from trainer.engine.steps import assistant_loss, evaluate

    split = tokenize_split(tokenizer, [colour_conversation("sky")] * 2, 64, "tiny")
    batch = collate(split.examples, tokenizer.pad_token_id)

    def gradients():
        model.zero_grad()
        assistant_loss(model, batch, "cpu").backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    before = gradients()
    evaluate(model, split, [[0, 1]], tokenizer.pad_token_id, DistContext(), TrainHooks(), "cpu")
    assert model.training
    after = gradients()
    # Layer 0 learns only through gradients carried back across layer 1's frozen 4-bit weights
    # (lora_B: lora_A starts with no gradient since B starts at zero).
    first_layer_b = next(n for n in before if "layers.0.self_attn.q_proj" in n and "lora_B" in n)
    assert before[first_layer_b].abs().sum() > 0
    for name, grad in before.items():
        assert (grad - after[name]).abs().max().item() < 1e-6, name
