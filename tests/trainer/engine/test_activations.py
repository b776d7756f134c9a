"""Per-layer activation modes against plain autograd on the same tiny LoRA Llama."""

import pytest
import torch
from torch import nn

from trainer.engine import activations, toy
from trainer.engine.activations import (
    GRAD_ARGUMENT,
    MODE_COUNT,
    NO_LAYERS,
    UNKNOWN_MODE,
    apply_layer_modes,
    decoder_layers,
    layer_modes,
)

MIXES = [
    ["keep", "recompute", "offload", "keep"],
    ["offload", "offload", "offload", "offload"],
    ["recompute", "offload", "recompute", "offload"],
]


def tiny_lora_llama(dropout: float = 0.0):
    # Four layers, so that mixes of modes have room; the wrappers must keep the replay out of
    # the KV cache that use_cache=True (the config's default) asks for.
    return toy.tiny_lora_llama(layers=4, dropout=dropout)


def tiny_batch():
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(0, 128, (2, 12), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, :3] = 0  # left padding, so the mask passes through the wrappers
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": input_ids}


def loss_and_grads(model, batch, *, seed: int = 0, autocast: bool = False):
    """As the training step: forward (under autocast if asked), then backward outside it."""
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = model(**batch).loss
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}
    return loss.detach(), grads, torch.get_rng_state()


def assert_same_training_step(reference, candidate):
    (ref_loss, ref_grads, ref_rng), (loss, grads, rng) = reference, candidate
    torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=1e-7)
    assert grads.keys() == ref_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_grads[name], rtol=1e-5, atol=1e-7, msg=name)
    assert torch.equal(rng, ref_rng)  # the replay in backward leaves the global RNG alone


@pytest.mark.parametrize("modes", MIXES, ids="-".join)
def test_loss_and_lora_gradients_equal_plain_autograd(modes):
    model, batch = tiny_lora_llama(), tiny_batch()
    reference = loss_and_grads(model, batch)
    apply_layer_modes(decoder_layers(model), modes)
    assert_same_training_step(reference, loss_and_grads(model, batch))


@pytest.mark.parametrize("modes", MIXES, ids="-".join)
def test_lora_dropout_replays_the_same_masks_in_backward(modes):
    model, batch = tiny_lora_llama(dropout=0.3), tiny_batch()
    reference = loss_and_grads(model, batch, seed=5)
    other_seed = loss_and_grads(model, batch, seed=6)
    assert not torch.equal(other_seed[0], reference[0])  # dropout really acts
    apply_layer_modes(decoder_layers(model), modes)
    assert_same_training_step(reference, loss_and_grads(model, batch, seed=5))


def test_offload_replays_the_layer_under_the_forwards_autocast():
    model, batch = tiny_lora_llama(), tiny_batch()
    reference = loss_and_grads(model, batch, autocast=True)
    apply_layer_modes(decoder_layers(model), ["offload"] * 4)
    assert_same_training_step(reference, loss_and_grads(model, batch, autocast=True))


def test_offload_gives_layer_0_lora_gradients_behind_a_frozen_embedding():
    model, batch = tiny_lora_llama(), tiny_batch()
    assert not model.get_input_embeddings()(batch["input_ids"]).requires_grad
    layers = decoder_layers(model)
    apply_layer_modes(layers, ["offload", "keep", "keep", "keep"])
    loss_and_grads(model, batch)
    lora = [p for name, p in layers[0].named_parameters() if "lora_" in name]
    assert lora and all(p.grad is not None and p.grad.abs().sum() > 0 for p in lora)


def test_decoder_layers_are_the_peft_models_llama_layers():
    model = tiny_lora_llama()
    layers = decoder_layers(model)
    assert layers == list(model.get_base_model().model.layers)
    assert decoder_layers(model.get_base_model()) == layers


def test_decoder_layers_explains_when_there_are_none():
    with pytest.raises(ValueError) as error:
        decoder_layers(nn.Sequential(nn.Linear(2, 2)))
    assert str(error.value) == NO_LAYERS.format(count=None, name="Sequential")


def test_modes_are_checked_before_any_layer_changes():
    layers = decoder_layers(tiny_lora_llama())
    with pytest.raises(ValueError) as error:
        apply_layer_modes(layers, ["keep", "offload"])
    assert str(error.value) == MODE_COUNT.format(modes=2, layers=4)
    with pytest.raises(ValueError) as error:
        apply_layer_modes(layers, ["offload", "offload", "offload", "swap"])
    assert str(error.value) == UNKNOWN_MODE.format(mode="swap")
    assert layer_modes(layers) == ["keep"] * 4


def test_keep_restores_the_class_forward():
    layers = decoder_layers(tiny_lora_llama())
    apply_layer_modes(layers, ["recompute", "offload", "offload", "keep"])
    assert layer_modes(layers) == ["recompute", "offload", "offload", "keep"]
    apply_layer_modes(layers, ["offload", "recompute", "keep", "keep"])  # re-wrap, not stack
    assert layer_modes(layers) == ["offload", "recompute", "keep", "keep"]
    apply_layer_modes(layers, ["keep"] * 4)
    assert layer_modes(layers) == ["keep"] * 4
    for layer in layers:
        assert "forward" not in layer.__dict__
        assert layer.forward.__func__ is type(layer).forward


def test_keep_restores_an_instance_forward_set_before_the_wrapper():
    layers = decoder_layers(tiny_lora_llama())
    hooked = layers[0].forward  # as accelerate's hooks set one
    layers[0].forward = hooked
    apply_layer_modes(layers, ["offload", "keep", "keep", "keep"])
    apply_layer_modes(layers, ["keep"] * 4)
    assert layers[0].__dict__["forward"] is hooked


def test_module_names_and_state_dict_keys_do_not_change():
    from peft import get_peft_model_state_dict

    model = tiny_lora_llama()
    names = [name for name, _ in model.named_modules()]
    keys, adapter_keys = list(model.state_dict()), list(get_peft_model_state_dict(model))
    apply_layer_modes(decoder_layers(model), ["recompute", "offload", "recompute", "offload"])
    assert [name for name, _ in model.named_modules()] == names
    assert list(model.state_dict()) == keys
    assert list(get_peft_model_state_dict(model)) == adapter_keys


@pytest.fixture
def wrapper_calls(monkeypatch):
    """Counts the wrappers' checkpoint and offload calls."""
    calls = []
    checkpoint, offload = activations.checkpoint, activations._OffloadedLayer.apply

    def counted(kind, function):
        def call(*args, **kwargs):
            calls.append(kind)
            return function(*args, **kwargs)

        return call

    monkeypatch.setattr(activations, "checkpoint", counted("recompute", checkpoint))
    monkeypatch.setattr(activations._OffloadedLayer, "apply", counted("offload", offload))
    return calls


def test_eval_mode_and_no_grad_run_the_layers_as_they_are(wrapper_calls):
    model, batch = tiny_lora_llama(dropout=0.3), tiny_batch()
    model.eval()
    with torch.no_grad():
        plain_eval = model(**batch).logits
    model.train()
    with torch.no_grad():
        torch.manual_seed(3)
        plain_no_grad = model(**batch).logits

    apply_layer_modes(decoder_layers(model), ["recompute", "offload", "recompute", "offload"])
    model.eval()
    torch.testing.assert_close(model(**batch).logits, plain_eval, rtol=0, atol=0)
    model.train()
    with torch.no_grad():
        torch.manual_seed(3)
        torch.testing.assert_close(model(**batch).logits, plain_no_grad, rtol=0, atol=0)
    assert wrapper_calls == []
    model(**batch)
    assert wrapper_calls == ["recompute", "offload", "recompute", "offload"]


def saved_activation_bytes(model, batch) -> int:
    """Bytes of the distinct tensors autograd saves for backward, parameters left out."""
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = model(**batch).loss
    loss.backward()
    return sum(storages.values())


@pytest.mark.parametrize("mode", ["recompute", "offload"])
def test_recompute_and_offload_layers_save_less_for_backward_than_keep(mode):
    model, batch = tiny_lora_llama(), tiny_batch()
    layers = decoder_layers(model)
    kept = saved_activation_bytes(model, batch)
    apply_layer_modes(layers, ["keep", mode, "keep", "keep"])
    one = saved_activation_bytes(model, batch)
    apply_layer_modes(layers, [mode] * 4)
    every = saved_activation_bytes(model, batch)
    assert every < one < kept


class ToyLayer(nn.Module):
    """Returns a tuple, as decoder layers of older transformers did."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 8)
        self.dropout = nn.Dropout(0.5)

    def forward(self, hidden_states, scale):
        return self.dropout(self.linear(hidden_states)) * scale + hidden_states, scale


@pytest.mark.parametrize("by_keyword", [False, True])
def test_offload_handles_tuple_outputs_and_hidden_states_by_keyword(by_keyword):
    torch.manual_seed(0)
    layer, scale = ToyLayer(), torch.tensor(2.0)
    hidden = torch.randn(3, 8, requires_grad=True)

    def step():
        layer.zero_grad(set_to_none=True)
        hidden.grad = None
        torch.manual_seed(1)
        args = {"hidden_states": hidden, "scale": scale} if by_keyword else {"scale": scale}
        output, returned_scale = layer(**args) if by_keyword else layer(hidden, **args)
        assert returned_scale is scale
        output.square().sum().backward()
        return hidden.grad.clone(), layer.linear.weight.grad.clone()

    reference = step()
    apply_layer_modes([layer], ["offload"])
    for expected, got in zip(reference, step(), strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)


def test_offload_refuses_other_arguments_that_require_grad():
    layer = ToyLayer()
    apply_layer_modes([layer], ["offload"])
    with pytest.raises(ValueError) as error:
        layer(torch.randn(3, 8), scale=torch.tensor(2.0, requires_grad=True))
    assert str(error.value) == GRAD_ARGUMENT.format(name="scale")
