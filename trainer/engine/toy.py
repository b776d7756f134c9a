"""The in-memory toy model used by the engine's tests and the training benchmarks.

A tiny random Llama and a word-level tokenizer with a ChatML template, built in seconds: nothing
is downloaded, the vocabulary is the words below, the weights are random and seeded. The colour
questions are a task the toy model can learn in a few steps. Torch and transformers are imported
inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SPECIALS = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>"]
VOCABULARY = (
    "system user assistant you are helpful what colour is the sky grass snow blood sea sun "
    "say red green blue white yellow black one two three four five six seven eight nine ten "
    "yes no please answer briefly"
)
WORDS = VOCABULARY.split()
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
COLOURS = {"sky": "blue", "grass": "green", "snow": "white", "blood": "red", "sun": "yellow"}


def build_tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIALS + WORDS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="<unk>",
        pad_token="<pad>",
        eos_token="<|im_end|>",
        additional_special_tokens=["<|im_start|>"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_model(
    directory: Path,
    *,
    seed: int = 0,
    vocab_size: int | None = None,
    layers: int = 2,
    tied_embeddings: bool = False,
) -> Path:
    """A Llama of 2 (or ``layers``) 64-wide layers (bitsandbytes quantises in blocks of 64),
    its output layer a separate matrix unless ``tied_embeddings``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size or len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=tied_embeddings,
    )
    directory.mkdir(parents=True, exist_ok=True)
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def colour_conversation(thing: str, colour: str | None = None) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "you are helpful"},
        {"role": "user", "content": f"what colour is the {thing}"},
        {"role": "assistant", "content": colour or COLOURS[thing]},
    ]


def tiny_lora_llama(*, layers: int, dropout: float = 0.0) -> Any:
    """An in-memory random float32 Llama (vocabulary 128, 64 wide) with LoRA r4 on every
    linear layer, in training mode. B is random, not zero, so every LoRA weight (A included)
    gets a non-zero gradient; use_cache stays True, its default."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    lora = LoraConfig(
        r=4, target_modules="all-linear", lora_dropout=dropout, init_lora_weights=False
    )
    model = get_peft_model(LlamaForCausalLM(config), lora)
    model.train()
    return model
