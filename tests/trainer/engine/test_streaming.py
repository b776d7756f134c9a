"""Streamed NF4 layers against resident ones on a tiny 4-layer model, on CPU."""

import pytest
import torch

from trainer.engine.activations import (
    apply_layer_modes,
    decoder_layers,
    layer_modes,
    layer_streamer,
)
from trainer.engine.config import TrainConfig
from trainer.engine.modeling import load_qlora_model, prepare_for_training
from trainer.engine.streaming import LayerStreamer, is_parked, park, storage_bytes
from trainer.engine.toy import build_tiny_model
from trainer.engine.weights import quantized_linears

LAYERS = 4
STREAMED = ["keep", "stream", "stream", "stream"]
ALL_STREAMED = ["stream"] * LAYERS


@pytest.fixture(scope="module")
def four_layer_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama-4"), layers=LAYERS)


def nf4_model(model_dir):
    """The engine's NF4 + LoRA model with random (not zero) B, so every adapter weight gets a
    gradient from the first step."""
    model = load_qlora_model(model_dir, TrainConfig(rank=4, dropout=0.0), "cpu")
    torch.manual_seed(7)
    for name, parameter in sorted(model.named_parameters()):
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.05)
    return model


def tiny_batch():
    ids = torch.randint(4, 40, (2, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, :3] = 0  # left padding passes through the wrappers
    return {"input_ids": ids, "attention_mask": mask, "labels": ids}


def train(model, steps=2):
    """Losses and LoRA gradients of ``steps`` AdamW steps on one batch."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    batch, history = tiny_batch(), []
    for _ in range(steps):
        loss = model(**batch).loss
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        history.append((loss.item(), grads))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return history


@pytest.mark.parametrize("modes", [STREAMED, ALL_STREAMED], ids=["mixed", "all"])
def test_streamed_layers_train_exactly_like_resident_ones(four_layer_dir, modes):
    reference = train(nf4_model(four_layer_dir))
    model = nf4_model(four_layer_dir)
    apply_layer_modes(decoder_layers(model), modes)
    assert layer_modes(decoder_layers(model)) == modes
    for (ref_loss, ref_grads), (loss, grads) in zip(reference, train(model), strict=True):
        assert loss == pytest.approx(ref_loss, rel=1e-6)
        assert grads.keys() == ref_grads.keys()
        for name, grad in grads.items():
            assert grad.abs().sum() > 0, name
            torch.testing.assert_close(grad, ref_grads[name], rtol=1e-6, atol=1e-8, msg=name)


def test_greedy_generation_gives_the_same_tokens_with_streamed_layers(four_layer_dir):
    prompt = torch.tensor([[5, 9, 14, 22, 7]])

    def generate(model):
        model.eval()
        with torch.no_grad():
            return model.generate(
                input_ids=prompt,
                attention_mask=torch.ones_like(prompt),
                max_new_tokens=8,
                do_sample=False,
                use_cache=True,
            )

    expected = generate(nf4_model(four_layer_dir))
    model = nf4_model(four_layer_dir)
    streamer = apply_layer_modes(decoder_layers(model), ALL_STREAMED)
    assert torch.equal(generate(model), expected)
    # Every token passes all four layers, and two buffers cannot hold them all.
    assert streamer.fetches > 8 * LAYERS // 2


def layers_on_the_device(streamer):
    """How many streamed layers have their 4-bit tensors in a device buffer."""
    buffers = streamer.buffer_storages()
    return sum(
        any(
            linear.weight.untyped_storage().data_ptr() in buffers
            for linear in quantized_linears(layer)
        )
        for layer in streamer.layers
    )


def test_no_more_than_two_layers_are_on_the_device_while_layers_run(four_layer_dir):
    model = nf4_model(four_layer_dir)
    streamer = apply_layer_modes(decoder_layers(model), ALL_STREAMED)
    seen = []

    def count(module, args, kwargs=None):
        seen.append((len(streamer.resident_layers()), layers_on_the_device(streamer)))

    for layer in decoder_layers(model):
        for linear in quantized_linears(layer):
            linear.register_forward_pre_hook(count)  # forward, replay and generation alike
    train(model, steps=1)
    assert seen and max(resident for resident, _ in seen) == 2
    assert max(on_device for _, on_device in seen) == 2
    assert min(on_device for _, on_device in seen) >= 1  # the running layer, at least


def test_one_fetch_serves_the_replay_and_the_backward(four_layer_dir):
    """First step: 4 fetches in forward; backward finds the last two layers still there and
    fetches the other two. Later steps find the first two from the backward before."""
    model = nf4_model(four_layer_dir)
    streamer = apply_layer_modes(decoder_layers(model), ALL_STREAMED)
    assert layer_streamer(decoder_layers(model)) is streamer
    train(model, steps=1)
    assert streamer.fetches == LAYERS + (LAYERS - 2)
    before = streamer.fetches
    train(model, steps=1)
    assert streamer.fetches - before == 2 * (LAYERS - 2)
    assert streamer.bytes_copied == streamer.fetches * storage_bytes(decoder_layers(model)[0])


def test_parked_weights_leave_only_host_copies_until_the_layer_runs(four_layer_dir):
    model = nf4_model(four_layer_dir)
    layer = decoder_layers(model)[1]
    linears = quantized_linears(layer)
    before = [linear.weight.clone() for linear in linears]
    storage = park(layer)
    assert is_parked(layer) and park(layer) is storage
    host = storage.host.untyped_storage().data_ptr()
    for linear, weight in zip(linears, before, strict=True):
        assert linear.weight.untyped_storage().data_ptr() == host
        assert torch.equal(linear.weight, weight)
        state = linear.weight.quant_state
        assert state.absmax.untyped_storage().data_ptr() == host
        assert state.state2.absmax.untyped_storage().data_ptr() == host


def test_a_layer_no_longer_streamed_gets_its_weights_back(four_layer_dir):
    model = nf4_model(four_layer_dir)
    layers = decoder_layers(model)
    apply_layer_modes(layers, ALL_STREAMED)
    assert all(is_parked(layer) for layer in layers)
    apply_layer_modes(layers, ["keep", "recompute", "offload", "stream"])
    assert [is_parked(layer) for layer in layers] == [False, False, False, True]
    reference = train(nf4_model(four_layer_dir), steps=1)
    ((loss, _),) = train(model, steps=1)
    assert loss == pytest.approx(reference[0][0], rel=1e-6)


def test_a_layer_without_4bit_weights_cannot_stream():
    with pytest.raises(ValueError, match="no 4-bit weights"):
        LayerStreamer([torch.nn.Linear(4, 4)], "cpu")


def test_training_preparation_brings_back_parked_layers_the_plan_keeps(four_layer_dir):
    model = nf4_model(four_layer_dir)
    for layer in decoder_layers(model):
        park(layer)
    plan, _ = prepare_for_training(model, TrainConfig(rank=4), "cpu", tokens=24, world_size=1)
    assert "stream" not in plan.layer_modes  # on CPU, whose memory holds them anyway
    assert not any(is_parked(layer) for layer in decoder_layers(model))


def test_training_preparation_streams_the_layers_its_plan_streams(four_layer_dir, monkeypatch):
    import dataclasses

    from trainer.engine import modeling
    from trainer.engine.steps import assistant_loss

    plan_memory, asked = modeling.plan_memory, []

    def streaming_plan(shape, **options):
        asked.append((shape.quantized_bytes_per_layer, options["host_layers"]))
        modes = ("keep", "recompute", "stream", "stream")
        return dataclasses.replace(plan_memory(shape, **options), layer_modes=modes)

    config, batch = TrainConfig(rank=4, dropout=0.0), tiny_batch()
    resident = nf4_model(four_layer_dir)
    _, head = prepare_for_training(resident, config, "cpu", tokens=24, world_size=1)
    monkeypatch.setattr(modeling, "plan_memory", streaming_plan)
    model = nf4_model(four_layer_dir)
    park(decoder_layers(model)[3])
    plan, _ = prepare_for_training(model, config, "cpu", tokens=24, world_size=1)
    layers = decoder_layers(model)
    assert asked == [(storage_bytes(layers[0]), 1)]
    assert layer_modes(layers) == list(plan.layer_modes)
    assert [is_parked(layer) for layer in layers] == [False, False, True, True]
    # The plan asked for dequantised copies of every layer (CPU memory is ample): not these.
    assert all("forward" in vars(m) for m in quantized_linears(layers[1]))
    assert not any("forward" in vars(m) for m in quantized_linears(layers[2]))
    losses = []
    for candidate in (resident, model):
        loss = assistant_loss(candidate, batch, "cpu", head)
        loss.backward()
        losses.append(loss.item())
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)


def test_a_model_too_big_for_the_device_loads_its_layers_into_host_memory(
    four_layer_dir, monkeypatch
):
    from trainer.engine import modeling

    reference = train(nf4_model(four_layer_dir), steps=1)
    monkeypatch.setattr(modeling, "memory_budget", lambda device: 1024)
    model = nf4_model(four_layer_dir)
    assert all(is_parked(layer) for layer in decoder_layers(model))
    ((loss, _),) = train(model, steps=1)
    assert loss == pytest.approx(reference[0][0], rel=1e-6)
    monkeypatch.undo()
    prepare_for_training(model, TrainConfig(rank=4), "cpu", tokens=24, world_size=1)
    assert not any(is_parked(layer) for layer in decoder_layers(model))


def test_the_nf4_size_estimate_is_what_bitsandbytes_makes(four_layer_dir):
    """4 bits a weight and one absmax byte per 64 (the small fixed quantisation tables
    aside), the vocabulary tables in the compute dtype."""
    from trainer.engine.modeling import nf4_bytes, read_fingerprint

    model = load_qlora_model(four_layer_dir, TrainConfig(rank=4), "cpu")
    base = model.get_base_model()
    tables = sum(
        m.weight.numel() * m.weight.element_size()
        for m in (base.get_input_embeddings(), base.get_output_embeddings())
    )
    linears = sum(
        m.weight.numel() + m.weight.quant_state.absmax.numel() for m in quantized_linears(base)
    )
    estimate = nf4_bytes(read_fingerprint(four_layer_dir))
    assert estimate == pytest.approx(tables * 2 / 4 + linears, rel=1e-3)  # fp32 tables on CPU
    assert nf4_bytes(None) is None
