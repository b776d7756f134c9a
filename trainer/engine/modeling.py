"""Loading a base model for QLoRA: 4-bit NF4 weights, LoRA adapters on top.

Compute dtype: bf16 on CUDA (fp16 where the GPU lacks bf16), float32 on CPU, where bitsandbytes
with bf16 compute is about 14× slower (56 s against 4 s a step on SmolLM2-135M, batch 8 × 46).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trainer.engine.config import TrainConfig
from trainer.engine.data import check_tokenizer

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
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def use_gradient_checkpointing(config: TrainConfig, device: str) -> bool:
    """On CUDA memory is the limit and recomputation is cheap next to it; on CPU RAM is rarely
    the limit for models small enough to train there, and recomputation costs a third more."""
    if config.gradient_checkpointing == "auto":
        return device.startswith("cuda")
    return config.gradient_checkpointing == "on"


def load_tokenizer(model_dir: Path | str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    check_tokenizer(tokenizer, str(model_dir))
    if tokenizer.pad_token_id is None:
        # Padded positions are masked out of attention and loss, so any id will do.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_qlora_model(model_dir: Path | str, config: TrainConfig, device: str) -> Any:
    """The base in NF4 with double quantisation, prepared for k-bit training, LoRA on top.

    Adapter weights start from ``config.seed``. The returned peft model is in training mode:
    transformers skips gradient checkpointing silently in eval mode.
    """
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    dtype = compute_dtype(device)
    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
    )
    model = AutoModelForCausalLM.from_pretrained(
        str(model_dir),
        quantization_config=quantization,
        dtype=dtype,
        device_map={"": device},
    )
    model.config.use_cache = False  # the KV cache only serves generation
    keep_cpu_weights_differentiable(model)
    checkpointing = use_gradient_checkpointing(config, device)
    model = prepare_model_for_kbit_training(
        model,
        use_gradient_checkpointing=checkpointing,
        # Non-reentrant checkpointing works with frozen inputs and with DDP.
        gradient_checkpointing_kwargs={"use_reentrant": False},
    )
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
