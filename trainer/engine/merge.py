"""A merged model: the base in full precision with the LoRA adapter folded into its weights
(peft ``merge_and_unload``), saved as an ordinary transformers model that needs no peft.

The base is loaded unquantised in float32: folding LoRA into NF4 weights would round the
adapter away. Heavy imports happen inside the function."""

from pathlib import Path


def merge_adapter(model_dir: str | Path, adapter_dir: str | Path, out: Path) -> Path:
    """Write the merged model and the adapter's tokenizer (else the base's) to ``out``."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from trainer.engine.generate import load_tokenizer

    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out)
    tokenizer = load_tokenizer(model_dir, adapter_dir)
    tokenizer.padding_side = "right"
    tokenizer.save_pretrained(out)
    return out
