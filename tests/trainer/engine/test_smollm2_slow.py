"""Real QLoRA on the packaged SmolLM2-135M-Instruct, on CPU, for a few steps.

Slow (about a minute and a half on 2 cores, half of it the one-time GGUF conversion): the
only test that touches the real model.
"""

import pytest

from trainer.engine.checkpoint import ADAPTER_DIR
from trainer.engine.config import TrainConfig
from trainer.engine.data import IGNORE_INDEX, tokenize_conversation
from trainer.engine.hooks import RecordingHooks
from trainer.engine.loop import train

# A house style the base model does not have: a fixed opening and a fixed closing line.
ITEMS = ["tea", "bread", "rice", "soup", "coffee", "pasta", "eggs", "beans"]


def conversation(item: str, grams: int) -> list[dict[str, str]]:
    return [
        {"role": "user", "content": f"How much does a cup of {item} weigh?"},
        {
            "role": "assistant",
            "content": f"KITCHEN NOTE: about {grams} g of {item}.\nWeigh it to be sure.",
        },
    ]


TRAIN = [conversation(item, 100 + 10 * n) for n, item in enumerate(ITEMS)] * 2
VALIDATION = [conversation("flour", 125), conversation("sugar", 200)]
# SmolLM2-135M, rank 16 on all linear layers: 30 blocks × 16 × (q 576+576, k 576+192,
# v 576+192, o 576+576, gate 576+1536, up 576+1536, down 1536+576) = 30 × 162,816.
LORA_PARAMS = 4_884_480


@pytest.mark.slow
def test_real_qlora_on_smollm2_learns_and_the_adapter_changes_the_answers(tmp_path, smollm2_dir):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = smollm2_dir
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    example = tokenize_conversation(tokenizer, TRAIN[0], 256)
    pairs = zip(example.input_ids, example.labels, strict=True)
    trained = [token for token, label in pairs if label != IGNORE_INDEX]
    assert tokenizer.decode(trained) == TRAIN[0][1]["content"] + "<|im_end|>\n"

    hooks = RecordingHooks()
    # A high rate so that six steps visibly change the answers.
    config = TrainConfig(learning_rate=2e-3, batch_size=8, max_steps=6, eval_every=3)
    result = train(
        model_dir=model_dir,
        config=config,
        train_conversations=TRAIN,
        validation_conversations=VALIDATION,
        output_dir=tmp_path / "run",
        hooks=hooks,
    )
    losses = [p.train_loss for p in hooks.steps]
    assert result.final_step == 6 and losses[-1] < 0.5 * losses[0], losses
    assert hooks.evaluations[-1].val_loss < hooks.evaluations[0].val_loss
    assert result.trainable_params == LORA_PARAMS
    weights = load_file(tmp_path / "run" / ADAPTER_DIR / "adapter_model.safetensors")
    assert sum(t.numel() for t in weights.values()) == LORA_PARAMS  # float32: ~19.5 MB

    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, tmp_path / "run" / ADAPTER_DIR).eval()
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "How much does a cup of oats weigh?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        tuned = model.generate(**prompt, max_new_tokens=12, do_sample=False)
        with model.disable_adapter():
            plain = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    start = prompt["input_ids"].shape[1]
    tuned_text = tokenizer.decode(tuned[0, start:], skip_special_tokens=True)
    plain_text = tokenizer.decode(plain[0, start:], skip_special_tokens=True)
    assert tuned_text != plain_text
    assert tuned_text.startswith("KITCHEN NOTE"), tuned_text
