"""Where the frozen base weights live: cached dequantised copies, a CPU embedding table."""

from trainer.engine.config import TrainConfig
from trainer.engine.modeling import load_qlora_model
from trainer.engine.weights import (
    cache_dequantized,
    embeddings_to_cpu,
    output_layer_passthrough,
    quantized_linears,
)


def test_a_cached_copy_multiplies_exactly_like_bitsandbytes(tiny_model_dir):
    import torch

    model = load_qlora_model(tiny_model_dir, TrainConfig(rank=4), "cpu")
    linears = quantized_linears(model)
    inputs = [torch.randn(3, 5, linear.in_features) for linear in linears]
    expected = [linear(x) for linear, x in zip(linears, inputs, strict=True)]
    taken = cache_dequantized([model], torch.float32)
    assert taken == sum(4 * m.in_features * m.out_features for m in linears)
    for linear, x, want in zip(linears, inputs, expected, strict=True):
        assert "forward" in vars(linear)  # patched on the instance: names and keys unchanged
        torch.testing.assert_close(linear(x), want, rtol=1e-5, atol=1e-6)


def test_a_cpu_embedding_table_looks_up_the_same_rows():
    import torch

    embedding = torch.nn.Embedding(50, 8, padding_idx=0)
    ids = torch.tensor([[0, 3, 49], [7, 7, 1]])
    expected = embedding(ids)
    freed = embeddings_to_cpu(embedding)
    assert freed == 50 * 8 * 4
    torch.testing.assert_close(embedding(ids), expected)
    assert embedding.weight.device.type == "cpu"


def test_the_output_layer_passes_hidden_states_through():
    import torch

    head = torch.nn.Linear(8, 50, bias=False)
    output_layer_passthrough(head)
    hidden = torch.randn(2, 3, 8)
    assert head(hidden) is hidden
    assert set(head.state_dict()) == {"weight"}
