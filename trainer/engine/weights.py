"""Where the frozen base weights live while training, and in what form.

Each change replaces a module's ``forward`` on the instance, so module names, the adapter's
saved keys and the checkpoint layout stay what peft and transformers expect.

- ``cache_dequantized``: a bf16 copy of a 4-bit layer's weights beside them. bitsandbytes
  dequantises the whole weight for every training matmul (forward, backward, recomputation)
  and multiplies in the compute dtype, so multiplying by the cached copy gives the same numbers
  without the dequantisation.
- ``embeddings_to_cpu``: an untied input embedding table is only ever indexed, so it can stay
  in CPU memory; only the looked-up rows travel to the GPU.
- ``output_layer_passthrough``: the model returns its final hidden states instead of logits;
  the loss multiplies them by the output layer in chunks (``kernels.causal_lm_loss``), so the
  full vocabulary × tokens logits never exist.
"""

from __future__ import annotations

import types
from collections.abc import Iterable
from typing import Any


def quantized_linears(module: Any) -> list[Any]:
    """The bitsandbytes 4-bit layers inside ``module``."""
    from bitsandbytes.nn import Linear4bit

    return [m for m in module.modules() if isinstance(m, Linear4bit)]


def cache_dequantized(layers: Iterable[Any], dtype: Any) -> int:
    """Give every 4-bit layer inside ``layers`` a dequantised copy; returns the bytes taken."""
    import bitsandbytes.functional as bnbf

    taken = 0
    for block in layers:
        for linear in quantized_linears(block):
            weight = bnbf.dequantize_4bit(linear.weight.data, linear.weight.quant_state)
            linear.dequantized = weight.to(dtype)
            linear.forward = types.MethodType(_cached_forward, linear)
            taken += linear.dequantized.numel() * linear.dequantized.element_size()
    return taken


def _cached_forward(self: Any, x: Any) -> Any:
    import torch.nn.functional as F

    weight = self.dequantized
    bias = None if self.bias is None else self.bias.to(weight.dtype)
    return F.linear(x.to(weight.dtype), weight, bias).to(x.dtype)


def embeddings_to_cpu(embedding: Any) -> int:
    """Keep an ``nn.Embedding``'s table in CPU memory; returns the device bytes freed."""
    import torch

    device = embedding.weight.device
    freed = embedding.weight.numel() * embedding.weight.element_size()
    embedding.to("cpu")
    if device.type == "cuda":
        embedding.weight.data = embedding.weight.data.pin_memory()
    embedding.forward = types.MethodType(_make_cpu_lookup(device), embedding)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return freed


def _make_cpu_lookup(device: Any) -> Any:
    def lookup(self: Any, input_ids: Any) -> Any:
        import torch.nn.functional as F

        rows = F.embedding(input_ids.to("cpu"), self.weight, self.padding_idx)
        return rows.to(device, non_blocking=True)

    return lookup


def output_layer_passthrough(lm_head: Any) -> None:
    """Make the output layer return its input: the loss applies the layer itself, in chunks."""
    lm_head.forward = types.MethodType(lambda self, hidden: hidden, lm_head)
