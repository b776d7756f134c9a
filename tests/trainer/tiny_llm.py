"""A tiny random Llama with a word-level tokenizer and a chat template, built in seconds.

Generation tests use it instead of a real checkpoint: nothing is downloaded, and the weights are
seeded so greedy outputs are reproducible from run to run.
"""

from pathlib import Path

WORDS = (
    "the a cat dog sat ran on under mat rug big small red blue what where who is are was and or "
    "not yes no one two three four five six seven eight nine ten"
)
SPECIALS = ["<unk>", "<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>"]

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

# Chats in the words above for the generation tests: of unequal lengths, so a batch pads, and
# one with a system turn.
CONVERSATIONS = [
    [{"role": "user", "content": "what is the cat"}],
    [{"role": "user", "content": "where is the big red dog on the mat and the small blue cat"}],
    [{"role": "system", "content": "yes"}, {"role": "user", "content": "who sat"}],
    [{"role": "user", "content": "one two three four five"}],
    [{"role": "user", "content": "the dog ran under the rug"}],
]


def build_tiny_llm(directory: Path, *, seed: int = 0) -> Path:
    """Save a 2-layer random Llama and its tokenizer under ``directory``; return it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate([*SPECIALS, *WORDS.split(" ")])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        additional_special_tokens=["<|user|>", "<|assistant|>", "<|system|>"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["</s>"],
        pad_token_id=vocab["<pad>"],
    )
    model = LlamaForCausalLM(config)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_lora_adapter(model_dir: Path, directory: Path, *, seed: int = 1, rank: int = 4) -> Path:
    """Save a random LoRA adapter for the model in ``model_dir``; random B (not zero) so the
    adapter really changes the outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, target_modules="all-linear", init_lora_weights=False
    )
    get_peft_model(base, config).save_pretrained(directory)
    return directory


def load_nf4_with_adapter(model_dir: Path, adapter_dir: Path):
    """The base in NF4 with float32 compute and the adapter loaded by peft, in eval mode: the
    model apart from the engine, which tests compare the engine's numbers against. The same
    kernels as training: bitsandbytes' bf16 CPU inference kernel would differ by ~1e-4."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.float32,
    )
    base = AutoModelForCausalLM.from_pretrained(
        model_dir, quantization_config=quantization, dtype=torch.float32
    )
    for module in base.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
    return PeftModel.from_pretrained(base, adapter_dir).eval()
