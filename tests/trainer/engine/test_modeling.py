import pytest

from trainer.engine.config import TrainConfig
from trainer.engine.data import collate, tokenize_split
from trainer.engine.hooks import TrainHooks
from trainer.engine.modeling import build_optimizer, load_qlora_model, prepare_for_training
from trainer.engine.toy import colour_conversation

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


def prepared(model_dir, config, tokens=64):
    model = load_qlora_model(model_dir, config, "cpu")
    plan, head = prepare_for_training(model, config, "cpu", tokens=tokens, world_size=1)
    return model, plan, head


@pytest.mark.parametrize(
    ("setting", "mode"), [("on", "recompute"), ("off", "keep"), ("auto", "keep")]
)
def test_checkpointing_follows_the_setting_and_on_cpu_auto_keeps_activations(
    tiny_model_dir, setting, mode
):
    from trainer.engine.activations import decoder_layers, layer_modes

    config = TrainConfig(rank=4, gradient_checkpointing=setting)
    model, plan, _ = prepared(tiny_model_dir, config)
    assert layer_modes(decoder_layers(model)) == [mode, mode] == list(plan.layer_modes)
    assert model.training


def test_base_weights_stay_frozen_in_the_compute_dtype(tiny_model_dir):
    import torch

    model, _, _ = prepared(tiny_model_dir, TrainConfig(rank=4))
    for name, parameter in model.named_parameters():
        if "lora_" not in name:
            assert not parameter.requires_grad, name
    embedding = model.get_base_model().get_input_embeddings().weight
    assert embedding.dtype == torch.float32  # the CPU compute dtype; bf16 on a GPU


def test_the_prepared_model_computes_the_same_loss_and_gradients(tiny_model_dir, tokenizer):
    """Fused norms and SwiGLU, cached dequantised weights, per-layer recomputation and the
    chunked output layer change how the step is computed, not what it computes."""
    import torch

    from trainer.engine.steps import assistant_loss

    split = tokenize_split(tokenizer, [colour_conversation(t) for t in ("sky", "sun")], 64, "t")
    batch = collate(split.examples, tokenizer.pad_token_id)
    config = TrainConfig(rank=4, dropout=0.0, gradient_checkpointing="on")
    plain = load_qlora_model(tiny_model_dir, config, "cpu")
    fast, plan, head = prepared(tiny_model_dir, config)
    head = type(head)(weight=head.weight, chunk_tokens=5)  # several chunks, one of them short
    assert plan.cached_layers == 2
    for model in (plain, fast):
        torch.manual_seed(7)
        for name, parameter in sorted(model.named_parameters()):
            if "lora_B" in name:
                torch.nn.init.normal_(parameter, std=0.05)

    def loss_and_gradients(model, output_head):
        model.zero_grad()
        loss = assistant_loss(model, batch, "cpu", output_head)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        return loss.item(), grads

    expected_loss, expected = loss_and_gradients(plain, None)
    loss, grads = loss_and_gradients(fast, head)
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    assert grads.keys() == expected.keys()
    for name, grad in expected.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_the_optimizer_is_fused_adamw_unless_the_plan_wants_8bit_states(tiny_model_dir):
    import dataclasses

    import torch

    model, plan, _ = prepared(tiny_model_dir, TrainConfig(rank=4))
    params = [p for p in model.parameters() if p.requires_grad]
    assert type(build_optimizer(params, TrainConfig(), plan)) is torch.optim.AdamW
    lean = dataclasses.replace(plan, optimizer="adamw_8bit")
    assert type(build_optimizer(params, TrainConfig(), lean)).__name__ == "AdamW8bit"


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


def test_the_memory_there_is_comes_from_linux_or_from_the_physical_size(monkeypatch):
    import builtins
    import os

    from trainer.engine.modeling import available_ram_bytes

    with open("/proc/meminfo") as meminfo:
        listed = next(int(line.split()[1]) * 1024 for line in meminfo if "MemAvailable" in line)
    linux = available_ram_bytes()
    assert abs(linux - listed) < 0.25 * listed  # read moments apart; memory moves a little

    real_open = builtins.open

    def no_proc(path, *args, **kwargs):
        if str(path).startswith("/proc/"):
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_proc)
    assert available_ram_bytes() == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def test_a_model_that_reshapes_its_logits_keeps_its_own_output_layer(tmp_path):
    """Gemma 2 soft-caps its logits after the output layer: the chunked loss, which applies
    the output layer itself, would skip that. Such models keep computing their own logits."""
    import torch
    from transformers import Gemma2Config, Gemma2ForCausalLM

    from trainer.engine.steps import assistant_loss

    torch.manual_seed(0)
    config = Gemma2Config(
        vocab_size=96,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        final_logit_softcapping=3.0,
    )
    Gemma2ForCausalLM(config).save_pretrained(tmp_path)
    settings = TrainConfig(rank=4, dropout=0.0)
    plain = load_qlora_model(tmp_path, settings, "cpu")
    model = load_qlora_model(tmp_path, settings, "cpu")
    plan, head = prepare_for_training(model, settings, "cpu", tokens=16, world_size=1)
    assert head is None
    ids = torch.randint(0, 96, (2, 8), generator=torch.Generator().manual_seed(1))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    with torch.no_grad():
        expected = assistant_loss(plain, batch, "cpu").item()
        got = assistant_loss(model, batch, "cpu", head).item()
    assert got == pytest.approx(expected, rel=1e-5)
    assert plan.layer_modes == ("keep", "keep")
