"""One-off check of the engine's CUDA path on a GPU machine (no network, random weights).

    python benchmarks/train_cuda_check.py --out results.json [--checks packing,tiny]

1. a tiny random Llama through the whole loop: bf16 compute, the memory plan the engine chooses,
   validation, early stopping, and stop + resume against an uninterrupted run;
2. a ~0.4B random Llama shape (hidden 2048, 8 blocks, vocabulary 32000) at batch 8 × ~512
   tokens: tokens/s and peak GPU memory;
3. the out-of-memory message, provoked for real by capping the process's GPU memory;
4. packing: a packed row through the GPU's attention for packed rows (variable-length flash
   attention where torch has it) against its examples one by one (padded SDPA batches of one):
   loss, LoRA gradients, and that changing one example leaves the others' logits alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trainer.engine.config import TrainConfig  # noqa: E402
from trainer.engine.hooks import RecordingHooks, TrainingOutOfMemory  # noqa: E402
from trainer.engine.loop import train  # noqa: E402
from trainer.engine.toy import COLOURS, build_tokenizer, colour_conversation  # noqa: E402

WRONG = {"sky": "red", "grass": "blue", "snow": "black", "blood": "green", "sun": "white"}


def build_model(directory: Path, **shape) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, **shape
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def long_conversation(n: int) -> list[dict[str, str]]:
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    text = " ".join(words[(n + i) % 10] for i in range(250))
    return [{"role": "user", "content": text}, {"role": "assistant", "content": text}]


def tiny_checks(work: Path) -> dict:
    model = build_model(
        work / "tiny",
        vocab_size=64,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    train_set = [colour_conversation(t) for t in COLOURS] * 2
    val_set = [colour_conversation(t, WRONG[t]) for t in COLOURS]
    early_hooks = RecordingHooks()
    early = train(
        model_dir=model,
        config=TrainConfig(rank=4, learning_rate=0.05, batch_size=5, epochs=20, eval_every=1),
        train_conversations=train_set,
        validation_conversations=val_set,
        output_dir=work / "early",
        hooks=early_hooks,
    )
    config = TrainConfig(rank=4, learning_rate=0.02, batch_size=2, max_steps=6, eval_every=3)
    runs = {}
    for name, stop_after, resume in (("whole", None, None), ("stopped", 4, None)):
        hooks = RecordingHooks(stop_after=stop_after)
        train(
            model_dir=model,
            config=config,
            train_conversations=train_set,
            validation_conversations=val_set,
            output_dir=work / name,
            hooks=hooks,
            resume_from=resume,
        )
        runs[name] = hooks
    resumed = RecordingHooks()
    train(
        model_dir=model,
        config=config,
        train_conversations=train_set,
        validation_conversations=val_set,
        output_dir=work / "resumed",
        hooks=resumed,
        resume_from=work / "stopped" / "checkpoint",
    )
    whole_tail = [p.train_loss for p in runs["whole"].steps[4:]]
    resumed_losses = [p.train_loss for p in resumed.steps]
    return {
        "environment": early.environment,
        "early_stop": {
            "stop_reason": early.stop_reason,
            "best_step": early.best_step,
            "final_step": early.final_step,
            "val_losses": [round(e.val_loss, 4) for e in early_hooks.evaluations],
        },
        "resume": {
            "whole_steps_5_6": whole_tail,
            "resumed_steps_5_6": resumed_losses,
            "max_abs_difference": max(
                abs(a - b) for a, b in zip(whole_tail, resumed_losses, strict=True)
            ),
        },
    }


def mid_checks(work: Path, steps: int) -> dict:
    import torch

    model = build_model(
        work / "mid",
        vocab_size=32000,
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=8,
        num_attention_heads=16,
        num_key_value_heads=4,
        max_position_embeddings=1024,
    )
    conversations = [long_conversation(n) for n in range(8 * (steps + 1))]
    hooks = RecordingHooks()
    started = time.monotonic()
    result = train(
        model_dir=model,
        config=TrainConfig(batch_size=8, max_steps=steps, max_seq_len=1024),
        train_conversations=conversations,
        validation_conversations=conversations[:8],
        output_dir=work / "mid-run",
        hooks=hooks,
    )
    rates = [p.tokens_per_s for p in hooks.steps[2:]]
    out = {
        "trainable_params": result.trainable_params,
        "total_params": result.total_params,
        "tokens_per_s_median_after_2": sorted(rates)[len(rates) // 2] if rates else None,
        "losses": [round(p.train_loss, 4) for p in hooks.steps],
        "peak_memory_gib": round(result.peak_memory_bytes / 2**30, 2),
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    torch.cuda.empty_cache()
    return out


def oom_check(work: Path) -> dict:
    import torch

    # 2 GiB: the 4-bit model loads (about 1 GiB), a batch of 64 × 1024 tokens does not fit
    # (its float32 logits alone take 8 GiB).
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(2 * 2**30 / total)
    try:
        train(
            model_dir=work / "mid",
            config=TrainConfig(batch_size=64, max_steps=1, max_seq_len=1024),
            train_conversations=[long_conversation(n) for n in range(64)],
            validation_conversations=[],
            output_dir=work / "oom-run",
        )
    except TrainingOutOfMemory as error:
        return {"raised": "TrainingOutOfMemory", "message": str(error)}
    except Exception as error:  # report whatever else happened
        return {"raised": type(error).__name__, "message": str(error)[:500]}
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    return {"raised": None}


def packing_check(work: Path, device: str = "cuda:0") -> dict:
    import random

    import torch

    from trainer.engine.data import IGNORE_INDEX, TokenizedExample, collate
    from trainer.engine.modeling import load_qlora_model, prepare_for_training
    from trainer.engine.packed_attention import attention_kind
    from trainer.engine.packing import collate_packed
    from trainer.engine.steps import assistant_loss, forward

    # Head dimension 64 and grouped key/value heads, as in the Llama shapes.
    model_dir = build_model(
        work / "packing",
        vocab_size=64,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    config = TrainConfig(rank=8, dropout=0.0)
    model = load_qlora_model(model_dir, config, device)
    torch.manual_seed(3)
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.05)
    lengths = [37, 120, 9, 300, 64]
    _, head = prepare_for_training(
        model, config, device, tokens=len(lengths) * max(lengths), world_size=1, packing=True
    )

    def example(length, seed):
        ids = random.Random(seed).choices(range(4, 64), k=length)
        answer = length - round(0.6 * length)
        labels = [IGNORE_INDEX] * answer + ids[answer:]
        return TokenizedExample(input_ids=ids, labels=labels, truncated=False)

    examples = [example(n, seed) for seed, n in enumerate(lengths)]

    def loss_and_grads(batches):
        model.zero_grad(set_to_none=True)
        loss = sum(assistant_loss(model, batch, device, head) for batch in batches)
        loss.backward()
        return loss.item(), {
            n: p.grad.float() for n, p in model.named_parameters() if p.grad is not None
        }

    packed_loss, packed = loss_and_grads([collate_packed(examples)])
    single_loss, single = loss_and_grads([collate([e], 1) for e in examples])
    grad_errors = {
        name: ((packed[name] - single[name]).norm() / single[name].norm()).item() for name in single
    }
    changed = [example(lengths[0], 99), *examples[1:]]
    with torch.no_grad():
        before = forward(model, collate_packed(examples), device)[1]
        after = forward(model, collate_packed(changed), device)[1]
    first = lengths[0]
    return {
        "attention": attention_kind(device),
        "loss_packed": packed_loss,
        "loss_one_by_one": single_loss,
        "loss_relative_difference": abs(packed_loss - single_loss) / abs(single_loss),
        "lora_gradients": len(grad_errors),
        "grad_relative_error_max": max(grad_errors.values()),
        "changed_example_moved": (before[0, :first] - after[0, :first]).abs().max().item(),
        "other_examples_moved": (before[0, first:] - after[0, first:]).abs().max().item(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--checks", default="tiny,mid,oom,packing", help="which, comma-separated")
    args = parser.parse_args()
    import torch

    report = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        checks = {
            "tiny": lambda: tiny_checks(work),
            "mid": lambda: mid_checks(work, args.steps),
            "oom": lambda: oom_check(work),
            "packing": lambda: packing_check(work),
        }
        for name in args.checks.split(","):
            check = checks[name]
            began = time.monotonic()
            report[name] = check()
            report[name]["seconds"] = round(time.monotonic() - began, 1)
            print(name, json.dumps(report[name], default=str)[:1500], flush=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
