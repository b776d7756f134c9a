"""Loading a model layer by layer, each layer quantised and parked, against from_pretrained."""

import pytest
import torch

from trainer.engine.activations import decoder_layers
from trainer.engine.config import TrainConfig
from trainer.engine.layerwise import MISSING_WEIGHT, CheckpointWeights, load_layerwise
from trainer.engine.modeling import add_lora, load_qlora_model
from trainer.engine.streaming import is_parked
from trainer.engine.weights import quantized_linears


@pytest.fixture(scope="module")
def sharded_dir(tmp_path_factory):
    """A 3-layer tiny Llama saved in several safetensors shards with an index."""
    from transformers import AutoModelForCausalLM

    from trainer.engine.toy import build_tiny_model

    whole = build_tiny_model(tmp_path_factory.mktemp("whole"), layers=3)
    directory = tmp_path_factory.mktemp("sharded")
    AutoModelForCausalLM.from_pretrained(whole).save_pretrained(directory, max_shard_size="60KB")
    assert (directory / "model.safetensors.index.json").is_file()
    return directory


def layerwise(model_dir):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir)
    return load_layerwise(config, CheckpointWeights(model_dir), "cpu", torch.float32)


def quantised_tensors(model):
    tensors = []
    for linear in quantized_linears(model):
        state = linear.weight.quant_state
        tensors += [linear.weight.data, state.absmax, state.code, state.offset]
        tensors += [state.state2.absmax, state.state2.code]
    return tensors


def test_layer_by_layer_makes_the_nf4_model_from_pretrained_makes(sharded_dir):
    config = TrainConfig(rank=4, dropout=0.0)
    expected = load_qlora_model(sharded_dir, config, "cpu")
    model = add_lora(layerwise(sharded_dir), config)
    assert all(is_parked(layer) for layer in decoder_layers(model))
    got, want = quantised_tensors(model), quantised_tensors(expected)
    assert len(got) == len(want) == 3 * 7 * 6
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b)
    want_params = dict(expected.named_parameters())
    for name, parameter in model.named_parameters():
        assert torch.equal(parameter, want_params[name]), name
    ids = torch.randint(4, 40, (2, 9), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(
            model(input_ids=ids).logits, expected(input_ids=ids).logits, rtol=0, atol=0
        )


def test_a_tensor_missing_from_the_checkpoint_is_named(sharded_dir):
    class Partial(CheckpointWeights):
        def __contains__(self, name):
            return name != "model.norm.weight" and super().__contains__(name)

    from transformers import AutoConfig

    with pytest.raises(KeyError) as error:
        load_layerwise(
            AutoConfig.from_pretrained(sharded_dir), Partial(sharded_dir), "cpu", torch.float32
        )
    assert error.value.args[0] == MISSING_WEIGHT.format(name="model.norm.weight")


def test_a_single_file_checkpoint_with_a_tied_output_layer(tmp_path):
    from trainer.engine.toy import build_tiny_model

    model_dir = build_tiny_model(tmp_path, vocab_size=96, tied_embeddings=True)
    assert (model_dir / "model.safetensors").is_file()
    expected = load_qlora_model(model_dir, TrainConfig(rank=4), "cpu").get_base_model()
    model = layerwise(model_dir)
    assert model.lm_head.weight is model.get_input_embeddings().weight
    ids = torch.randint(0, 96, (1, 7), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(
            model(input_ids=ids).logits, expected(input_ids=ids).logits, rtol=0, atol=0
        )
