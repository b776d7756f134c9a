"""Loading a base model for QLoRA: 4-bit NF4 weights, LoRA adapters on top.

Compute dtype: bf16 on CUDA (fp16 where the GPU lacks bf16), float32 on CPU, where bitsandbytes
with bf16 compute is about 14× slower (56 s against 4 s a step on SmolLM2-135M, batch 8 × 46).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.engine.config import TrainConfig
from trainer.engine.data import check_tokenizer
from trainer.engine.memory_plan import HEADROOM, MemoryPlan, ModelShape, plan_memory

# The parts of a model's config that decide whether an adapter fits it.
FINGERPRINT_KEYS = (
    "model_type",
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
)


def compute_dtype(device: str) -> Any:
    """The dtype the matrix products run in, for training and for generation alike."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def nf4_config(dtype: Any) -> Any:
    """4-bit NF4 weights with double quantisation, computing in ``dtype``: how the base model is
    loaded for training, and for generation where it is quantised."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
    )


def load_tokenizer(model_dir: Path | str) -> Any:
    """The model's tokenizer, refused without a chat template or a fast version; EOS pads where
    there is no pad token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    check_tokenizer(tokenizer, str(model_dir))
    if tokenizer.pad_token_id is None:
        # Padded positions are masked out of attention and loss, so any id will do.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_qlora_model(model_dir: Path | str, config: TrainConfig, device: str) -> Any:
    """The base in NF4 with double quantisation, frozen, LoRA on top.

    Adapter weights start from ``config.seed``. The returned peft model is in training mode.
    The rest of the base (embeddings, norms, output layer) stays in the compute dtype: peft's
    ``prepare_model_for_kbit_training`` would copy it to fp32, which on a GPU costs memory (2 GB
    for Llama-3.1-8B's two vocabulary tables) and time (an fp32 residual stream) for nothing,
    since autocast runs the matrix products in bf16 anyway.

    A model too big for the device is loaded with its layers in CPU memory (``load_nf4_base``):
    the memory plan then streams them, or brings back those it finds room for.
    """
    return add_lora(load_nf4_base(model_dir, device, compute_dtype(device)), config)


def load_nf4_base(model_dir: Path | str, device: str, dtype: Any) -> Any:
    """The base model in NF4 on ``device``, computing in ``dtype``, for training and generation.

    A model whose 4-bit weights would not fit the device's memory (``nf4_bytes``) is loaded
    one decoder layer at a time, each layer's weights quantised on the device and parked in CPU
    memory (``layerwise.load_layerwise``); ``streaming.is_parked`` tells its layers.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    estimate = nf4_bytes(read_fingerprint(model_dir))
    if estimate is not None and estimate > memory_budget(device):
        from trainer.engine.layerwise import CheckpointWeights, load_layerwise

        base_config = AutoConfig.from_pretrained(str(model_dir))
        return load_layerwise(base_config, CheckpointWeights(model_dir), device, dtype)
    return AutoModelForCausalLM.from_pretrained(
        str(model_dir),
        quantization_config=nf4_config(dtype),
        dtype=dtype,
        device_map={"": device},
    )


def nf4_bytes(fingerprint: dict[str, Any] | None) -> int | None:
    """Roughly what a Llama-like model takes loaded in NF4 with double quantisation: its
    decoder linears at 4 bits and one absmax byte per 64 weights, its vocabulary tables in the
    compute dtype. None where the config is not at hand (a hub id) or lacks a width."""
    if fingerprint is None or None in fingerprint.values():
        return None
    h, i = fingerprint["hidden_size"], fingerprint["intermediate_size"]
    kv = h // fingerprint["num_attention_heads"] * fingerprint["num_key_value_heads"]
    linears = fingerprint["num_hidden_layers"] * (2 * h * h + 2 * h * kv + 3 * h * i)
    return int(linears * (0.5 + 1 / 64)) + 2 * 2 * fingerprint["vocab_size"] * h


def add_lora(model: Any, config: TrainConfig) -> Any:
    """Freeze a loaded NF4 base and put LoRA adapters (seeded by ``config.seed``) on it; the
    peft model comes back in training mode."""
    import torch
    from peft import LoraConfig, get_peft_model

    model.config.use_cache = False  # the KV cache only serves generation
    keep_cpu_weights_differentiable(model)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    torch.manual_seed(config.seed)
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=config.peft_target_modules(),
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    model.train()
    return model


# Causal LMs whose logits are the output layer's product and nothing more. Others change them
# afterwards (Gemma 2/3 soft-cap them, Cohere and Granite scale them), so the loss must take
# the model's own logits there.
PLAIN_HEAD_MODELS = frozenset(
    {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"}
)


@dataclass(frozen=True)
class OutputHead:
    """The output layer the loss applies itself, ``chunk_tokens`` tokens at a time."""

    weight: Any
    chunk_tokens: int


def prepare_for_training(
    model: Any,
    config: TrainConfig,
    device: str,
    *,
    tokens: int,
    world_size: int,
    packing: bool = False,
) -> tuple[MemoryPlan, OutputHead | None]:
    """Plan memory for micro-batches of up to ``tokens`` tokens and apply the plan.

    Fused RMSNorm/SwiGLU where the architecture is known, per-layer activation handling (and
    weight streaming), dequantised weight copies, the embedding table's place, and (for
    ``PLAIN_HEAD_MODELS``) an output layer that returns hidden states so the loss can apply it
    in chunks; the head is None where the model's own logits must be used. With ``packing``
    the model attends as packed rows need (``engine/packed_attention.py``).
    """
    from trainer.engine import activations, weights

    if packing:
        from trainer.engine.packed_attention import use_packed_attention

        use_packed_attention(model)
    plan = plan_for_training(model, config, device, tokens=tokens, world_size=world_size)
    base = model.get_base_model()
    layers = activations.decoder_layers(model)
    activations.apply_layer_modes(layers, plan.layer_modes, device)
    # A streamed layer's weights visit the device; a dequantised copy would stay there.
    resident = [
        layer for layer, mode in zip(layers, plan.layer_modes, strict=True) if mode != "stream"
    ]
    weights.cache_dequantized(resident[: plan.cached_layers], compute_dtype(device))
    if plan.embeddings_on_cpu:
        weights.embeddings_to_cpu(base.get_input_embeddings())
    if type(base).__name__ not in PLAIN_HEAD_MODELS:
        return plan, None
    head = base.get_output_embeddings()
    weights.output_layer_passthrough(head)
    return plan, OutputHead(weight=head.weight, chunk_tokens=plan.loss_chunk_tokens)


def plan_for_training(
    model: Any, config: TrainConfig, device: str, *, tokens: int, world_size: int
) -> MemoryPlan:
    """The memory plan ``prepare_for_training`` applies, for micro-batches of ``tokens``.

    Patches the fused kernels first (the plan counts on what they save; patching again
    changes nothing). Layers whose 4-bit weights were loaded into CPU memory
    (``streaming.park``) count as such: the plan streams at least as many, or brings them back.
    """
    from trainer.engine import activations, kernels, streaming

    fused = kernels.patch_llama_modules(model) > 0
    kernels.fuse_lora_forward(model)
    layers = activations.decoder_layers(model)
    streaming.gather_parameters(model, device)
    shape = model_shape(model, layers, element_bytes=compute_dtype(device).itemsize)
    return plan_memory(
        shape,
        tokens=tokens,
        loaded_bytes=allocated_bytes(device),
        budget_bytes=memory_budget(device),
        dropout=config.dropout > 0,
        fused=fused,
        chunked_loss=type(model.get_base_model()).__name__ in PLAIN_HEAD_MODELS,
        checkpointing=config.gradient_checkpointing,
        can_use_host_memory=world_size == 1 and device.startswith("cuda"),
        host_layers=sum(streaming.is_parked(layer) for layer in layers),
    )


def model_shape(model: Any, layers: list[Any], *, element_bytes: int) -> ModelShape:
    from trainer.engine.streaming import storage_bytes
    from trainer.engine.weights import quantized_linears

    def size(linear: Any) -> int:
        return linear.in_features * linear.out_features

    block = layers[0]
    adapted = [m for m in block.modules() if hasattr(m, "lora_A") and hasattr(m, "in_features")]
    trainable, _ = parameter_counts(model)
    return ModelShape.from_config(
        model.get_base_model().config.get_text_config(),
        quantized_params_per_layer=sum(size(m) for m in quantized_linears(block)),
        largest_linear_params=max(size(m) for m in quantized_linears(model)),
        lora_params=trainable,
        lora_inputs_per_layer=sum(m.in_features for m in adapted),
        element_bytes=element_bytes,
        quantized_bytes_per_layer=storage_bytes(block),
    )


def memory_budget(device: str) -> int:
    """Bytes training may plan to use: the device's memory (less what other processes hold,
    and within a per-process cap), or on CPU the memory the system has available."""
    if device.startswith("cuda"):
        import torch

        index = torch.device(device)
        total = torch.cuda.get_device_properties(index).total_memory
        # The cap a process set with torch.cuda.set_per_process_memory_fraction (torch 2.11
        # can tell; a version that cannot plans for the whole device).
        fraction_of = getattr(torch.cuda, "get_per_process_memory_fraction", lambda _: 1.0)
        fraction = fraction_of(index)
        free, _ = torch.cuda.mem_get_info(index)
        usable = min(total * fraction, torch.cuda.memory_reserved(index) + free)
        return int(usable * HEADROOM)
    return int(available_ram_bytes() * HEADROOM)


def available_ram_bytes() -> int:
    """Linux's MemAvailable; elsewhere (macOS) the physical memory, which is all it can tell."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def allocated_bytes(device: str) -> int:
    """What the loaded model takes on the device (on CPU it is already out of MemAvailable)."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.memory_allocated(torch.device(device)))
    return 0


def build_optimizer(params: list[Any], config: TrainConfig, plan: MemoryPlan) -> Any:
    """AdamW on the adapter weights: torch's fused kernel on a GPU; when the plan is short of
    memory, bitsandbytes' 8-bit states, or everything but bf16 weights in CPU memory."""
    import torch

    options = {"lr": config.learning_rate, "weight_decay": config.weight_decay}
    if plan.optimizer == "adamw_8bit":
        from bitsandbytes.optim import AdamW8bit

        return AdamW8bit(params, **options)
    device = str(params[0].device)
    if plan.optimizer == "adamw_host":
        from trainer.engine.host_optimizer import HostAdamW

        return HostAdamW(params, dtype=compute_dtype(device), **options)
    return torch.optim.AdamW(params, fused=device.startswith("cuda"), **options)


def keep_cpu_weights_differentiable(model: Any) -> None:
    """Stop bitsandbytes repacking 4-bit weights for its CPU inference kernel.

    On a CPU with AVX512-BF16, bitsandbytes 0.50 converts a Linear4bit's weights to another
    layout the first time the layer runs in eval mode without gradients (a validation pass),
    for good. Every later forward then goes through a kernel with no autograd support: it
    computes in bf16 and backpropagation through the frozen base layers silently yields no
    gradient, so the adapters of the earlier layers stop learning correctly. Training must
    never take that path.
    """
    from bitsandbytes.nn import Linear4bit

    for module in model.modules():
        if isinstance(module, Linear4bit):
            module.support_avx512bf16_for_cpu = False


def parameter_counts(model: Any) -> tuple[int, int]:
    """(trainable, total); peft counts each packed 4-bit byte as the two weights it holds."""
    return model.get_nb_trainable_parameters()


def fingerprint(config: dict[str, Any]) -> dict[str, Any]:
    return {key: config.get(key) for key in FINGERPRINT_KEYS}


def read_fingerprint(model_dir: Path | str) -> dict[str, Any] | None:
    """The fingerprint from ``config.json`` without loading anything; None for a hub id."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        return None
    return fingerprint(json.loads(path.read_text()))
