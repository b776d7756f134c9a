"""Loading a model whose 4-bit weights do not fit the device, one decoder layer at a time.

``from_pretrained`` with a quantisation config puts every layer on one device before training
can move any; for a 70B model on a 24 GB card that is out of memory, and quantising 70 billion
weights on the CPU instead takes far too long. Here the model is first made on the meta device
(no memory); the parts outside the decoder layers (vocabulary tables, final norm, rotary
embedding) are made on the device without layers and loaded; then each decoder layer's linear
weights are read one at a time, moved to the device in the compute dtype, quantised there by
bitsandbytes into the same NF4 ``Linear4bit`` that ``from_pretrained`` makes, and the finished
layer's 4-bit weights are parked in CPU memory (``streaming.park``) before the next is read.
The device never holds more than one layer's weights in the compute dtype.

Weights come from a ``WeightSource``: a checkpoint's safetensors files (``CheckpointWeights``)
or anything else that can hand over a named tensor (the benchmarks draw them from a seed).
Torch, transformers and safetensors are imported inside the functions.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Protocol

NO_SAFETENSORS = "found no model.safetensors or model.safetensors.index.json in {path}"
MISSING_WEIGHT = "the checkpoint has no tensor {name!r}"
SHAPE_MISMATCH = "{name}: the checkpoint's tensor has shape {checkpoint}, the model's another"
LAYER_BUFFERS = "decoder layers with buffers of their own cannot be loaded layer by layer: {name}"


class WeightSource(Protocol):
    def fill(self, name: str, destination: Any) -> None:
        """Write the tensor called ``name`` into ``destination`` (its shape, dtype, device)."""
        ...

    def __contains__(self, name: str) -> bool: ...


class CheckpointWeights:
    """The tensors of a safetensors checkpoint (one file or an index of shards), read one at a
    time."""

    def __init__(self, model_dir: Path | str) -> None:
        directory = Path(model_dir)
        index, single = directory / "model.safetensors.index.json", directory / "model.safetensors"
        if index.is_file():
            weight_map = json.loads(index.read_text())["weight_map"]
            self.files = {name: directory / file for name, file in weight_map.items()}
        elif single.is_file():
            from safetensors import safe_open

            with safe_open(str(single), framework="pt") as handle:
                self.files = dict.fromkeys(handle.keys(), single)
        else:
            raise FileNotFoundError(NO_SAFETENSORS.format(path=directory))
        self._open: dict[Path, Any] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.files

    def fill(self, name: str, destination: Any) -> None:
        from safetensors import safe_open

        if name not in self.files:
            raise KeyError(MISSING_WEIGHT.format(name=name))
        path = self.files[name]
        if path not in self._open:
            self._open[path] = safe_open(str(path), framework="pt")
        value = self._open[path].get_tensor(name)
        if value.shape != destination.shape:
            raise ValueError(SHAPE_MISMATCH.format(name=name, checkpoint=tuple(value.shape)))
        destination.copy_(value)


def load_layerwise(config: Any, weights: WeightSource, device: str, dtype: Any) -> Any:
    """A causal LM of ``config`` in NF4 (the engine's ``nf4_config``), its decoder layers'
    4-bit weights parked in CPU memory, everything else on ``device``."""
    import torch
    from transformers import AutoModelForCausalLM

    from trainer.engine import activations, streaming

    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config, dtype=dtype)
    layers = activations.decoder_layers(skeleton)
    list_name = next(
        name
        for name, module in skeleton.named_modules()
        if isinstance(module, torch.nn.ModuleList) and len(module) and module[0] is layers[0]
    )
    # The model without its layers, made for real on the device: tables, norm, rotary buffers.
    hollow = copy.deepcopy(config)
    hollow.num_hidden_layers = 0
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(hollow, dtype=dtype)
    model.config.num_hidden_layers = config.num_hidden_layers
    model.tie_weights()
    # A tied output layer is the input table under a second name, which checkpoints leave out.
    head = model.get_output_embeddings()
    tied = head.weight is model.get_input_embeddings().weight
    head_name = next(name for name, module in model.named_modules() if module is head)
    missing = [
        name
        for name in model.state_dict()
        if name not in weights and not (tied and name == f"{head_name}.weight")
    ]
    if missing:
        raise KeyError(MISSING_WEIGHT.format(name=missing[0]))
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name in weights:
                weights.fill(name, tensor)  # in place: no second copy of a table
    target = model.get_submodule(list_name)
    for index, layer in enumerate(layers):
        _materialise_layer(layer, f"{list_name}.{index}.", weights, device, dtype)
        streaming.park(layer)
        target.append(layer)
    model.is_loaded_in_4bit = True  # as transformers' bitsandbytes quantiser marks it
    return model


def _materialise_layer(layer: Any, prefix: str, weights: WeightSource, device: str, dtype: Any):
    """Quantise the meta ``layer``'s linear layers on ``device`` one at a time, then give its
    other parameters (norms) their weights."""
    from torch import nn

    if any(True for _ in layer.buffers()):
        raise ValueError(LAYER_BUFFERS.format(name=type(layer).__name__))
    for name, module in list(layer.named_modules()):
        if type(module) is nn.Linear:
            layer.set_submodule(name, nf4_linear(module, prefix + name, weights, device, dtype))
    for name, parameter in list(layer.named_parameters()):
        if parameter.is_meta:
            owner, _, attribute = name.rpartition(".")
            setattr(
                layer.get_submodule(owner),
                attribute,
                _read(weights, prefix + name, parameter, device, dtype),
            )


def nf4_linear(module: Any, name: str, weights: WeightSource, device: str, dtype: Any) -> Any:
    """The ``Linear4bit`` that ``from_pretrained`` with the engine's ``nf4_config`` makes of the
    linear layer ``name``: its weights read in ``dtype`` onto ``device`` and quantised there."""
    from bitsandbytes.nn import Linear4bit, Params4bit

    from trainer.engine.modeling import nf4_config

    quantization = nf4_config(dtype)
    linear = Linear4bit(
        module.in_features,
        module.out_features,
        bias=module.bias is not None,
        compute_dtype=quantization.bnb_4bit_compute_dtype,
        compress_statistics=quantization.bnb_4bit_use_double_quant,
        quant_type=quantization.bnb_4bit_quant_type,
        device="meta",
    )
    linear.weight = Params4bit(
        _read(weights, f"{name}.weight", module.weight, device, dtype).data,
        requires_grad=False,
        compress_statistics=quantization.bnb_4bit_use_double_quant,
        quant_type=quantization.bnb_4bit_quant_type,
        module=linear,
    ).to(device)  # quantises
    if module.bias is not None:
        linear.bias = _read(weights, f"{name}.bias", module.bias, device, dtype)
    return linear


def _read(weights: WeightSource, name: str, like: Any, device: Any, dtype: Any) -> Any:
    """A frozen parameter shaped as ``like``, holding the tensor ``name``."""
    import torch

    if name not in weights:
        raise KeyError(MISSING_WEIGHT.format(name=name))
    value = torch.empty(like.shape, dtype=dtype, device=device)
    weights.fill(name, value)
    return torch.nn.Parameter(value, requires_grad=False)
