"""QLoRA speed and memory on one GPU: the textbook recipe, Unsloth and evalhub's engine.

    python benchmarks/qlora_gpu.py --out DIR [--rows NAME,...] [--steps 5] [--warmup 2]
    python benchmarks/qlora_gpu.py --out DIR --smoke     # 2-layer shapes: checks every path
    python benchmarks/qlora_gpu.py --out DIR --rows 8b_b1_cap8 --contenders evalhub --profile
    python benchmarks/qlora_gpu.py --out DIR --rows 70b_b1_cap24,70b_plan_cap24,70b_generate_cap24
    python benchmarks/qlora_gpu.py --rows 8b_real --dry-run   # CPU: the real-lengths batches

Runs on the GPU machine, which has no network: the models are made there with random weights
(Llama-3.1-8B and Llama-2-7B shapes, bf16, saved once under --work) and a word-level tokenizer.
Every row runs in a fresh process (Unsloth patches transformers on import; peak memory is per
process), on the same token batches, with the same adapter: LoRA r16, alpha 32, dropout 0 on
all linear layers, NF4 + double quantisation, bf16 compute, AdamW lr 2e-4, clipping at 1.0.

- baseline: transformers + peft + bitsandbytes as the textbook recipe has it:
  prepare_model_for_kbit_training, non-reentrant gradient checkpointing, SDPA, bf16 autocast
  (what ``Trainer(bf16=True)`` does), torch AdamW.
- unsloth: FastLanguageModel with ``use_gradient_checkpointing="unsloth"``.
- evalhub: the engine as ``manage.py finetune`` runs it (load_qlora_model,
  prepare_for_training, build_optimizer, steps.train_step), memory plan chosen by the engine.

A row: tokens/s (batch × seq over the median of the timed steps), peak GPU memory allocated by
torch in that process (loading included), model FLOP utilisation (6 × non-embedding parameters
per token, the usual count for training, over the bf16 matmul rate measured in the same run),
the loss of every step. Caps use torch.cuda.set_per_process_memory_fraction, as a smaller card.

The Llama-3.1-70B shape cannot be saved in bf16 on the GPU machine's disk (140 GB), nor loaded
whole under a 24 GiB cap: its rows make the model in the row's process through the loader
``load_qlora_model`` uses for a checkpoint too big for the device (``layerwise.py``): layer by
layer, each linear layer's bf16 weights on the GPU (drawn from the seed here, read from the
checkpoint there), quantised there by bitsandbytes into NF4 ``Linear4bit``, each finished layer
parked in pinned CPU memory. From there on it is the engine's path: ``add_lora``,
``prepare_for_training`` (whose memory plan decides how many layers stream), the training step.
Those rows repeat one batch (their losses must fall) and measure, in the same process, the
host-to-device copy rate and the bf16 matmul rate, and report the two bounds on a step's time:
bytes streamed ÷ copy rate, and 6 × parameters × tokens ÷ matmul rate. The baseline and
Unsloth load the whole model onto the GPU, and the NF4 weights alone exceed the cap: their 70B
rows record that arithmetic instead of running.

The real-lengths row (``8b_real``) trains on examples of mixed lengths instead of full blocks:
the same seeded log-normal lengths for every contender (median 300 tokens, cut at 2,048; 512
examples, 64 with --smoke), random tokens, labels on the last 60 % of each example (the
assistant's answer; the rest -100). Baseline and Unsloth get what they would do without
packing: length-grouped padded batches of 8 (``length_grouped_batches`` and ``collate``, as the
engine makes them). evalhub gets what ``finetune`` does: packed rows of up to 8 × the longest
example (``engine/packing.py``) where its packing is on. Each contender first runs --warmup
batches, then the whole epoch, timed; its tokens/s counts real (non-pad) tokens only, over the
time of the whole epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# trainer is imported inside the functions (the baseline and Unsloth rows never load it), from
# this checkout: the GPU machine has no editable install.
sys.path.insert(0, str(ROOT))
GIB = 1024**3
SEED = 1234
LEARNING_RATE = 2e-4
LORA = {"r": 16, "alpha": 32, "dropout": 0.0}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
CONTENDERS = ("baseline", "unsloth", "evalhub")

SHAPES = {
    "llama31_8b": {
        "vocab_size": 128256,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "rope_theta": 500000.0,
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
    },
    "llama31_70b": {
        "vocab_size": 128256,
        "hidden_size": 8192,
        "intermediate_size": 28672,
        "num_hidden_layers": 80,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "rope_theta": 500000.0,
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
    },
    "llama2_7b": {
        "vocab_size": 32000,
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "rope_theta": 10000.0,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
    },
}
# Shapes made layer by layer in the row's process, never saved (see the module docstring).
BUILT_IN_PROCESS = {"llama31_70b"}
# (shape, seq_len, batch, cap in GiB or None); rows run for every contender. Batch "plan": the
# largest batch (up to MAX_PLAN_BATCH) whose memory plan fits; "generate": greedy decoding.
ROWS = {
    "8b_b1": ("llama31_8b", 2048, 1, None),
    "8b_b8": ("llama31_8b", 2048, 8, None),
    "8b_b1_cap24": ("llama31_8b", 2048, 1, 24),
    "8b_b8_cap24": ("llama31_8b", 2048, 8, 24),
    "8b_b1_cap16": ("llama31_8b", 2048, 1, 16),
    "8b_b8_cap16": ("llama31_8b", 2048, 8, 16),
    "8b_b1_cap12": ("llama31_8b", 2048, 1, 12),
    "8b_b8_cap12": ("llama31_8b", 2048, 8, 12),
    "8b_b1_cap8": ("llama31_8b", 2048, 1, 8),
    "8b_b8_cap8": ("llama31_8b", 2048, 8, 8),
    "7b_512_cap4": ("llama2_7b", 512, 1, 4),
    "70b_b1_cap24": ("llama31_70b", 2048, 1, 24),
    "70b_plan_cap24": ("llama31_70b", 2048, "plan", 24),
    "70b_generate_cap24": ("llama31_70b", 64, "generate", 24),
    # Mixed lengths cut at 2,048 (the seq column), padded batches of 8 or packed rows.
    "8b_real": ("llama31_8b", 2048, 8, None),
}
REAL_LENGTH_ROWS = {"8b_real"}
REAL_MEDIAN_TOKENS = 300
# The log-normal's sigma: about 1 example in 200 reaches the 2,048-token cut, the long tail of
# a support set; the mean is ~400 tokens.
REAL_SIGMA = 0.75
REAL_SHORTEST = 16
REAL_EXAMPLES = 512
REAL_EXAMPLES_SMOKE = 64
ANSWER_SHARE = 0.6
MAX_PLAN_BATCH = 16
GENERATED_TOKENS = 8
# --smoke: the 70B rows with 4 layers of the 70B widths, under a cap that still makes them
# stream (the embedding and output tables alone take 4 GiB).
SMOKE_LAYERS, SMOKE_CAP_70B = 4, 6
RESULT_MARK = "QLORA_GPU_ROW "


# ---------------------------------------------------------------- the three contenders


def load_baseline(model_dir: str, seq_len: int):
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    model = AutoModelForCausalLM.from_pretrained(
        model_dir,
        quantization_config=quantization,
        dtype=torch.bfloat16,
        device_map={"": 0},
        attn_implementation="sdpa",
    )
    model.config.use_cache = False
    model = prepare_model_for_kbit_training(
        model,
        use_gradient_checkpointing=True,
        gradient_checkpointing_kwargs={"use_reentrant": False},
    )
    torch.manual_seed(SEED)
    lora = LoraConfig(
        r=LORA["r"],
        lora_alpha=LORA["alpha"],
        lora_dropout=LORA["dropout"],
        target_modules=TARGETS,
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    model.train()
    return _hf_stepper(model), {}


def load_unsloth(model_dir: str, seq_len: int):
    import torch
    import unsloth  # noqa: F401  (first: it patches transformers and peft)
    from unsloth import FastLanguageModel

    model, _ = FastLanguageModel.from_pretrained(
        model_name=model_dir, max_seq_length=seq_len, dtype=torch.bfloat16, load_in_4bit=True
    )
    model = FastLanguageModel.get_peft_model(
        model,
        r=LORA["r"],
        lora_alpha=LORA["alpha"],
        lora_dropout=LORA["dropout"],
        target_modules=TARGETS,
        bias="none",
        use_gradient_checkpointing="unsloth",
        random_state=SEED,
    )
    FastLanguageModel.for_training(model)
    return _hf_stepper(model), {"unsloth": version("unsloth")}


def _hf_stepper(model):
    """The textbook step: HF's mean token loss under bf16 autocast, clip, AdamW."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=LEARNING_RATE, weight_decay=0.0)

    def step(batch):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return step


def evalhub_config(batch: int, seq_len: int):
    from trainer.engine.config import TrainConfig

    return TrainConfig(
        rank=LORA["r"],
        alpha=LORA["alpha"],
        dropout=LORA["dropout"],
        learning_rate=LEARNING_RATE,
        scheduler="constant",
        warmup_ratio=0.0,
        batch_size=batch,
        max_seq_len=seq_len,
        target_modules=",".join(TARGETS),
        seed=SEED,
    )


def load_evalhub(spec: dict):
    """The engine's model, step and plan; a 70B row's model is made in this process."""
    from transformers import get_scheduler

    from trainer.engine.activations import decoder_layers, layer_streamer
    from trainer.engine.distributed import DistContext
    from trainer.engine.hooks import TrainHooks
    from trainer.engine.modeling import (
        add_lora,
        build_optimizer,
        load_qlora_model,
        prepare_for_training,
    )
    from trainer.engine.packed_attention import packing_enabled
    from trainer.engine.packing import token_budget
    from trainer.engine.steps import StepContext, train_step

    seq_len, batch, device = spec["seq_len"], spec["batch"], "cuda:0"
    config = evalhub_config(1 if batch == "plan" else batch, seq_len)
    lengths = real_lengths(spec["real_examples"]) if spec.get("real_examples") else None
    # What finetune would do with mixed lengths: pack where its packing is on, in rows as large
    # as the largest padded batch (the tokens its memory plan is made for either way).
    packing = bool(lengths) and packing_enabled(config, device)
    if spec["shape"] in BUILT_IN_PROCESS:
        model = add_lora(build_streamed_llama(spec["shape_config"], device), config)
    else:
        model = load_qlora_model(spec["model_dir"], config, device)
    if batch == "plan":
        batch = plan_batch(model, config, device, seq_len)
        config = evalhub_config(batch, seq_len)
    tokens = token_budget(batch, lengths) if lengths else batch * seq_len
    plan, head = prepare_for_training(
        model, config, device, tokens=tokens, world_size=1, packing=packing
    )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(params, config, plan)
    scheduler = get_scheduler("constant", optimizer)
    step_context = StepContext(
        params=params,
        optimizer=optimizer,
        scheduler=scheduler,
        config=config,
        context=DistContext(),
        report=TrainHooks(),
        device=device,
        head=head,
    )

    def step(micro_batch):
        return train_step(model, [micro_batch], step_context).loss

    streamer = layer_streamer(decoder_layers(model))
    step.bytes_streamed = lambda: streamer.bytes_copied if streamer else 0
    return step, {"memory_plan": plan.summary(), "batch": batch, "packing": packing}


def plan_batch(model, config, device: str, seq_len: int) -> int:
    """The largest batch (up to MAX_PLAN_BATCH) whose memory plan the engine says fits."""
    import dataclasses

    from trainer.engine.modeling import plan_for_training

    fitting = 1
    for batch in range(2, MAX_PLAN_BATCH + 1):
        config = dataclasses.replace(config, batch_size=batch)
        plan = plan_for_training(model, config, device, tokens=batch * seq_len, world_size=1)
        if not plan.fits:
            break
        fitting = batch
    return fitting


class SeededWeights:
    """Every tensor a layer-by-layer load asks for, drawn on the device from the seed (norm
    weights: ones), in the order asked: a checkpoint that is never written."""

    def __init__(self, device: str, std: float) -> None:
        import torch

        self.generator = torch.Generator(device).manual_seed(SEED)
        self.std = std

    def __contains__(self, name: str) -> bool:
        return True

    def fill(self, name: str, destination) -> None:
        if destination.dim() == 1:
            destination.fill_(1.0)
        else:
            destination.normal_(0.0, self.std, generator=self.generator)


def build_streamed_llama(shape: dict, device: str):
    """A random Llama of ``shape`` in NF4 through the engine's layer-by-layer loader
    (``layerwise.load_layerwise``, what ``load_qlora_model`` does with a checkpoint too big for
    the device), its weights drawn from the seed instead of read from a checkpoint."""
    import torch
    from transformers import LlamaConfig

    from trainer.engine.layerwise import load_layerwise
    from trainer.engine.toy import build_tokenizer

    tokenizer = build_tokenizer()
    config = LlamaConfig(
        **shape, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id
    )
    weights = SeededWeights(device, config.initializer_range)
    return load_layerwise(config, weights, device, torch.bfloat16)


def h2d_gbps() -> float:
    """Pinned host-to-device copies of 1 GiB: GB/s over five after one warm-up."""
    import torch

    host = torch.empty(GIB, dtype=torch.uint8, pin_memory=True)
    device = torch.empty(GIB, dtype=torch.uint8, device="cuda:0")
    device.copy_(host, non_blocking=True)
    torch.cuda.synchronize()
    began = time.perf_counter()
    for _ in range(5):
        device.copy_(host, non_blocking=True)
    torch.cuda.synchronize()
    rate = 5 * GIB / (time.perf_counter() - began) / 1e9
    del host, device
    torch.cuda.empty_cache()
    return rate


# ---------------------------------------------------------------- the real-lengths data


def real_lengths(count: int) -> list[int]:
    """``count`` example lengths, log-normal around REAL_MEDIAN_TOKENS, cut at 2,048."""
    import math
    import random

    rng = random.Random(SEED)
    draws = (rng.lognormvariate(math.log(REAL_MEDIAN_TOKENS), REAL_SIGMA) for _ in range(count))
    return [min(2048, max(REAL_SHORTEST, round(x))) for x in draws]


def real_examples(lengths: list[int], vocab_size: int) -> list:
    """Random tokens; labels (the answer) on the last ANSWER_SHARE of each example."""
    import random

    from trainer.engine.data import IGNORE_INDEX, TokenizedExample

    rng = random.Random(SEED + 1)
    examples = []
    for length in lengths:
        ids = [rng.randrange(4, vocab_size) for _ in range(length)]
        prompt = length - round(ANSWER_SHARE * length)
        labels = [IGNORE_INDEX] * prompt + ids[prompt:]
        examples.append(TokenizedExample(input_ids=ids, labels=labels, truncated=False))
    return examples


def real_length_plan(lengths: list[int], batch: int, packing: bool) -> list[list[int]]:
    """Example indices per step: packed rows, or length-grouped padded batches."""
    from trainer.engine.data import length_grouped_batches
    from trainer.engine.packing import packed_batches, token_budget

    if packing:
        return packed_batches(lengths, token_budget(batch, lengths), seed=SEED, epoch=0)
    return length_grouped_batches(lengths, batch, seed=SEED, epoch=0)


def plan_summary(lengths: list[int], steps: list[list[int]], packing: bool) -> dict:
    """What a contender's epoch holds: real tokens, tokens it computes on (padding included),
    steps."""
    real = sum(lengths)
    computed = real if packing else sum(max(lengths[i] for i in s) * len(s) for s in steps)
    return {
        "examples": len(lengths),
        "steps": len(steps),
        "real_tokens": real,
        "computed_tokens": computed,
        "padding_share": round(1 - real / computed, 4),
        "longest_step_tokens": max(
            sum(lengths[i] for i in s) if packing else max(lengths[i] for i in s) * len(s)
            for s in steps
        ),
    }


# ---------------------------------------------------------------- one row, in its own process


def run_row(spec: dict) -> dict:
    import torch

    torch.cuda.set_device(0)
    total = torch.cuda.get_device_properties(0).total_memory
    if spec["cap_gib"]:
        torch.cuda.set_per_process_memory_fraction(spec["cap_gib"] * GIB / total, 0)
    rates = {}
    if spec["shape"] in BUILT_IN_PROCESS:
        rates = {"h2d_gbps": round(h2d_gbps(), 2), "matmul_tflops": round(matmul_tflops(), 1)}
        torch.cuda.reset_peak_memory_stats(0)
    if spec["batch"] == "generate":
        return {**rates, **generate_row(spec)}
    started = time.monotonic()
    contender, model_dir = spec["contender"], spec["model_dir"]
    seq_len = spec["seq_len"]
    if contender == "baseline":
        step, extra = load_baseline(model_dir, seq_len)
    elif contender == "unsloth":
        step, extra = load_unsloth(model_dir, seq_len)
    else:
        step, extra = load_evalhub(spec)
    batch = extra.get("batch", spec["batch"])
    load_seconds = time.monotonic() - started
    if spec.get("real_examples"):
        lengths = real_lengths(spec["real_examples"])
        return {
            **extra,
            **run_real_lengths(step, spec, lengths, extra.get("packing", False)),
            "load_seconds": round(load_seconds, 1),
            "peak_gib": round(torch.cuda.max_memory_allocated(0) / GIB, 2),
            "peak_reserved_gib": round(torch.cuda.max_memory_reserved(0) / GIB, 2),
        }

    generator = torch.Generator().manual_seed(SEED)
    vocab = spec["vocab_size"]
    losses, seconds = [], []
    for number in range(spec["warmup"] + spec["steps"]):
        if number == spec["warmup"] and rates:
            streamed_before = step.bytes_streamed()
        # The 70B rows repeat one batch, so that the losses show the adapter learning.
        if number == 0 or not rates:
            ids = torch.randint(0, vocab, (batch, seq_len), generator=generator).to("cuda:0")
            micro_batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
        torch.cuda.synchronize()
        began = time.perf_counter()
        losses.append(round(float(step(micro_batch)), 5))
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - began)
    timed = seconds[spec["warmup"] :]
    median = statistics.median(timed)
    if rates:
        bytes_per_step = (step.bytes_streamed() - streamed_before) / spec["steps"]
        tokens = batch * seq_len
        extra.update(rates)
        extra.update(
            step_bounds(spec["shape_config"], tokens, bytes_per_step, rates, median_step_s=median)
        )
    if spec.get("profile"):
        extra["profile"] = profile_step(step, micro_batch)
    return {
        **extra,
        "load_seconds": round(load_seconds, 1),
        "step_seconds": [round(s, 4) for s in seconds],
        "tokens_per_s": round(batch * seq_len / median),
        # Steadiness: the slowest timed step over the median (the issue asks for <= 1.10).
        "slowest_over_median": round(max(timed) / median, 3),
        "peak_gib": round(torch.cuda.max_memory_allocated(0) / GIB, 2),
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved(0) / GIB, 2),
        "losses": losses,
    }


def run_real_lengths(step, spec: dict, lengths: list[int], packing: bool) -> dict:
    """--warmup steps untimed, then the whole epoch timed; tokens/s in real tokens."""
    import torch

    from trainer.engine.data import collate
    from trainer.engine.packing import collate_packed

    examples = real_examples(lengths, spec["vocab_size"])
    steps = real_length_plan(lengths, spec["batch"], packing)

    def micro_batch(indices):
        chosen = [examples[i] for i in indices]
        batch = collate_packed(chosen) if packing else collate(chosen, spec["pad_id"])
        # Unsloth and the baseline take HF's arguments: no packing keys, labels for its loss.
        return {k: v.to("cuda:0") if hasattr(v, "to") else v for k, v in batch.items()}

    for indices in steps[: spec["warmup"]]:
        step(micro_batch(indices))
    losses, seconds = [], []
    for indices in steps:
        batch = micro_batch(indices)
        torch.cuda.synchronize()
        began = time.perf_counter()
        losses.append(round(float(step(batch)), 5))
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - began)
    if spec.get("profile"):
        profile = profile_step(step, micro_batch(steps[0]))
    summary = plan_summary(lengths, steps, packing)
    median = statistics.median(seconds)
    return {
        **summary,
        **({"profile": profile} if spec.get("profile") else {}),
        "step_seconds": [round(s, 4) for s in seconds],
        "epoch_seconds": round(sum(seconds), 3),
        "tokens_per_s": round(summary["real_tokens"] / sum(seconds)),
        "slowest_over_median": round(max(seconds) / median, 3),
        "losses": losses,
    }


def step_bounds(
    shape: dict, tokens: int, bytes_per_step: float, rates: dict, *, median_step_s: float
) -> dict:
    """The two lower bounds on a streamed step's time (copying its bytes at the measured copy
    rate; its FLOPs at the measured matmul rate) and the share of the larger one achieved."""
    copy_s = bytes_per_step / (rates["h2d_gbps"] * 1e9)
    compute_s = flops_per_token(shape) * tokens / (rates["matmul_tflops"] * 1e12)
    return {
        "bytes_streamed_per_step_gb": round(bytes_per_step / 1e9, 2),
        "copy_bound_s": round(copy_s, 3),
        "compute_bound_s": round(compute_s, 3),
        "share_of_larger_bound": round(max(copy_s, compute_s) / median_step_s, 3),
    }


def generate_row(spec: dict) -> dict:
    """Greedy decoding with the 70B base streamed and the (fresh) adapter on: tokens/s."""
    import torch

    from trainer.engine.activations import decoder_layers, layer_streamer
    from trainer.engine.generate import stream_parked_layers
    from trainer.engine.modeling import add_lora

    device = "cuda:0"
    started = time.monotonic()
    config = evalhub_config(1, spec["seq_len"])
    model = add_lora(build_streamed_llama(spec["shape_config"], device), config)
    stream_parked_layers(model, device)  # as generate.load_model does for such a base
    streamer = layer_streamer(decoder_layers(model))
    model.eval()
    load_seconds = time.monotonic() - started
    prompt = torch.randint(
        0, spec["vocab_size"], (1, spec["seq_len"]), generator=torch.Generator().manual_seed(SEED)
    ).to(device)

    def generate(new_tokens: int):
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            return model.generate(
                input_ids=prompt,
                attention_mask=torch.ones_like(prompt),
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                use_cache=True,
            )

    generate(1)  # warm-up
    before = streamer.bytes_copied
    torch.cuda.synchronize()
    began = time.perf_counter()
    output = generate(GENERATED_TOKENS)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - began
    made = output.shape[1] - prompt.shape[1]
    return {
        "load_seconds": round(load_seconds, 1),
        "generated_tokens": made,
        "generate_seconds": round(seconds, 2),
        "generated_tokens_per_s": round(made / seconds, 3),
        "bytes_streamed_per_token_gb": round((streamer.bytes_copied - before) / made / 1e9, 2),
        "peak_gib": round(torch.cuda.max_memory_allocated(0) / GIB, 2),
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved(0) / GIB, 2),
        "tokens": output[0, prompt.shape[1] :].tolist(),
    }


def profile_step(step, batch) -> list[str]:
    """One more step under torch.profiler: GPU time by operator, largest first, and how much of
    the step the GPU was busy at all (the rest: host-bound gaps, synchronous copies)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    began = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as profiler:
        step(batch)
        torch.cuda.synchronize()
    wall = time.perf_counter() - began
    events = profiler.key_averages()
    busy = sum(event.self_device_time_total for event in events) / 1e6
    table = events.table(sort_by="self_device_time_total", row_limit=25).splitlines()
    return [f"profiled step: {wall:.3f} s wall, GPU busy {busy:.3f} s", *table]


def in_fresh_process(script: str, argument: str, spec: dict, mark: str, timeout: int):
    """Run ``script argument spec`` offline in a new Python process: the JSON it printed after
    ``mark`` and no lines, or None and the lines it wrote last. Raises TimeoutExpired."""
    command = [sys.executable, script, argument, json.dumps(spec)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith(mark):
            return json.loads(line.removeprefix(mark)), []
    return None, (done.stderr or done.stdout).strip().splitlines()


def row_in_subprocess(spec: dict, timeout: int) -> dict:
    started = time.monotonic()
    try:
        result, lines = in_fresh_process(__file__, "--row", spec, RESULT_MARK, timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    if result is not None:
        return result
    tail = lines[-6:]
    out_of_memory = any("OutOfMemoryError" in line or "out of memory" in line for line in tail)
    return {
        "error": "out of memory" if out_of_memory else "failed",
        "detail": tail,
        "seconds": round(time.monotonic() - started, 1),
    }


# ---------------------------------------------------------------- the driver


def make_model(shape: dict, directory: Path, *, device: str = "cuda:0") -> Path:
    """A random bf16 model of ``shape`` and a word-level tokenizer, made on ``device``."""
    if (directory / "config.json").is_file():
        return directory
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from trainer.engine.toy import build_tokenizer

    tokenizer = build_tokenizer()
    torch.manual_seed(SEED)
    config = LlamaConfig(
        **shape, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id
    )
    torch.set_default_dtype(torch.bfloat16)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    torch.set_default_dtype(torch.float32)
    model.save_pretrained(directory, max_shard_size="4GB")
    tokenizer.save_pretrained(directory)
    del model
    torch.cuda.empty_cache()
    return directory


def matmul_tflops() -> float:
    """bf16 8192³ matrix products on random data: the mean of ten after three warm-ups."""
    import torch

    a = torch.randn(8192, 8192, device="cuda:0", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda:0", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    began = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    return 2 * 8192**3 * 10 / (time.perf_counter() - began) / 1e12


def flops_per_token(shape: dict) -> float:
    """6 × the parameters every token passes through (decoder linears and the output layer)."""
    h, i, layers = shape["hidden_size"], shape["intermediate_size"], shape["num_hidden_layers"]
    kv = h // shape["num_attention_heads"] * shape["num_key_value_heads"]
    per_layer = 2 * h * h + 2 * h * kv + 3 * h * i
    return 6 * (layers * per_layer + shape["vocab_size"] * h)


def gpu_description() -> dict:
    """The first GPU by name, as nvidia-smi sees it (driver, memory), and torch's CUDA."""
    import torch

    smi = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {"gpu": torch.cuda.get_device_name(0), "nvidia_smi": smi, "cuda": torch.version.cuda}


def machine() -> dict:
    from trainer.engine.environment import library_versions

    return {
        **gpu_description(),
        "python": platform.python_version(),
        "versions": library_versions(
            ("torch", "transformers", "peft", "bitsandbytes", "unsloth", "triton")
        ),
    }


def markdown(results: dict) -> str:
    lines = [
        f"# QLoRA on one GPU, {results['date']}",
        "",
        f"{results['machine']['gpu']} ({results['machine']['nvidia_smi']}); bf16 matmul "
        f"{results['matmul_tflops']:.0f} TFLOP/s measured in this run; "
        + ", ".join(f"{k} {v}" for k, v in results["machine"]["versions"].items()),
        "",
        "| shape | seq | batch | cap GiB | data | contender | tokens/s | slowest / median step "
        "| peak GiB | MFU | losses |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        if "error" in row:
            speed, steady, peak, mfu, losses = row["error"], "–", "–", "–", "–"
        elif "generated_tokens_per_s" in row:
            speed = f"{row['generated_tokens_per_s']} generated"
            steady, peak, mfu, losses = "–", f"{row['peak_gib']:.2f}", "–", "–"
        else:
            speed, peak = f"{row['tokens_per_s']:,}", f"{row['peak_gib']:.2f}"
            steady = f"{row['slowest_over_median']:.2f}"
            mfu = f"{row['mfu']:.0%}"
            losses = " ".join(f"{x:.4f}" for x in row["losses"][:3])
        lines.append(
            f"| {row['shape']} | {row['seq_len']} | {row['batch']} | {row['cap_gib'] or '–'} "
            f"| {data_column(row)} | {row['contender']} | {speed} | {steady} | {peak} | {mfu} "
            f"| {losses} |"
        )
    lines += [
        "",
        "data: full blocks of seq tokens, or real lengths (log-normal, median "
        f"{REAL_MEDIAN_TOKENS}, cut at seq; tokens/s counts real tokens over the whole epoch, "
        "whose steps and padding share are given there).",
    ]
    streamed = [row for row in results["rows"] if "h2d_gbps" in row and "error" not in row]
    if streamed:
        lines += [
            "",
            "| shape | batch | copy GB/s | matmul TFLOP/s | GB streamed per step (token) "
            "| copy bound s | compute bound s | share of the larger |",
            "|---|---|---|---|---|---|---|---|",
        ]
    for row in streamed:
        per = row.get("bytes_streamed_per_step_gb", row.get("bytes_streamed_per_token_gb"))
        lines.append(
            f"| {row['shape']} | {row['batch']} | {row['h2d_gbps']} | {row['matmul_tflops']} "
            f"| {per} | {row.get('copy_bound_s', '–')} | {row.get('compute_bound_s', '–')} "
            f"| {row.get('share_of_larger_bound', '–')} |"
        )
    return "\n".join(lines) + "\n"


def data_column(row: dict) -> str:
    if not row.get("real_examples"):
        return "blocks"
    if "steps" not in row:
        return f"real lengths, {row['real_examples']} examples"
    layout = "packed" if row.get("packing") else "padded"
    return f"real lengths, {layout}: {row['steps']} steps, {row['padding_share']:.0%} padding"


def dry_run(row_names: list[str], smoke: bool) -> None:
    """On any machine: the real-lengths rows' lengths and each contender's batches, collated
    as the GPU run collates them (nothing is trained)."""
    from trainer.engine.data import collate
    from trainer.engine.packing import collate_packed
    from trainer.engine.toy import SPECIALS

    for row_name in row_names:
        if row_name not in REAL_LENGTH_ROWS:
            continue
        _, _, batch, _ = ROWS[row_name]
        lengths = real_lengths(REAL_EXAMPLES_SMOKE if smoke else REAL_EXAMPLES)
        examples = real_examples(lengths, vocab_size=1000)
        ordered = sorted(lengths)
        print(
            f"{row_name}: {len(lengths)} examples, median {statistics.median(lengths):.0f}, "
            f"mean {statistics.mean(lengths):.0f}, longest {ordered[-1]}, "
            f"{ordered.count(2048)} cut at 2,048, {sum(lengths):,} tokens"
        )
        for packing in (False, True):
            steps = real_length_plan(lengths, batch, packing)
            batches = [
                collate_packed([examples[i] for i in s])
                if packing
                else collate([examples[i] for i in s], SPECIALS.index("<pad>"))
                for s in steps
            ]
            real = sum(
                int(b["attention_mask"].sum()) if "attention_mask" in b else b["input_ids"].numel()
                for b in batches
            )
            labelled = sum(int((b["labels"] != -100).sum()) for b in batches)
            layout = "packed rows (evalhub)" if packing else "padded batches (baseline, unsloth)"
            summary = plan_summary(lengths, steps, packing)
            assert real == summary["real_tokens"] == sum(lengths)
            print(f"  {layout}: {json.dumps(summary)}, {labelled / real:.0%} of tokens labelled")


def not_loadable(shape: dict, cap_gib: float) -> dict:
    """The row of a contender that loads the whole model onto the GPU from a checkpoint, for a
    shape that has none on disk: what its weights alone take, by the engine's own estimate,
    against the cap."""
    from trainer.engine.modeling import nf4_bytes

    weights = nf4_bytes(shape) / GIB
    over = weights > cap_gib
    return {
        "error": "out of memory (not run)" if over else "not run",
        "detail": [
            f"loads every layer onto the GPU: {weights:.1f} GiB of NF4 weights and bf16 "
            f"vocabulary tables against the {cap_gib} GiB cap; no checkpoint of this shape "
            "is saved to load"
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--row", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--work", type=Path, default=Path("/tmp/qlora_gpu"))
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=300, help="seconds per row")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"2-layer shapes ({SMOKE_LAYERS} for 70B, capped at {SMOKE_CAP_70B} GiB), 2 + 2 steps",
    )
    parser.add_argument(
        "--profile", action="store_true", help="one more step under torch.profiler per row"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="no GPU: print the real-lengths rows' batches for each contender and stop",
    )
    args = parser.parse_args()
    if args.dry_run:
        dry_run(args.rows.split(","), args.smoke)
        return
    if args.row:
        spec = json.loads(args.row)
        if spec["contender"] == "evalhub":
            from trainer.engine.environment import prefer_runtime_settings

            prefer_runtime_settings()  # as manage.py finetune does, before torch loads
        print(RESULT_MARK + json.dumps(run_row(spec)), flush=True)
        return

    from trainer.engine.toy import SPECIALS

    date = time.strftime("%Y-%m-%d")
    results = {"date": date, "machine": machine(), "matmul_tflops": matmul_tflops(), "rows": []}
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"qlora_gpu_{'smoke_' if args.smoke else ''}{date}"
    for row_name in args.rows.split(","):
        shape_name, seq_len, batch, cap = ROWS[row_name]
        shape = dict(SHAPES[shape_name])
        built = shape_name in BUILT_IN_PROCESS
        if args.smoke:
            shape["num_hidden_layers"] = SMOKE_LAYERS if built else 2
            cap = SMOKE_CAP_70B if built else cap
        smoke_dir = args.work / (shape_name + ("_smoke" if args.smoke else ""))
        model_dir = None if built else make_model(shape, smoke_dir)
        for contender in args.contenders.split(","):
            if built and contender != "evalhub" and batch == "generate":
                continue
            spec = {
                "contender": contender,
                "shape": shape_name,
                "seq_len": seq_len,
                "batch": batch,
                "cap_gib": cap,
                "model_dir": str(model_dir),
                "vocab_size": shape["vocab_size"],
                "steps": 2 if args.smoke else args.steps,
                "warmup": 2 if args.smoke else args.warmup,
                "profile": args.profile,
                "shape_config": shape,
            }
            if row_name in REAL_LENGTH_ROWS:
                spec["real_examples"] = REAL_EXAMPLES_SMOKE if args.smoke else REAL_EXAMPLES
                spec["pad_id"] = SPECIALS.index("<pad>")
            if built and contender != "evalhub":
                outcome = not_loadable(shape, cap)
            else:
                outcome = row_in_subprocess(spec, args.timeout)
            row = {
                k: v
                for k, v in spec.items()
                if k not in ("model_dir", "vocab_size", "shape_config", "pad_id")
            }
            row.update(outcome)
            if "tokens_per_s" in row:
                achieved = row["tokens_per_s"] * flops_per_token(shape) / 1e12
                row["mfu"] = round(achieved / results["matmul_tflops"], 4)
            results["rows"].append(row)
            print(json.dumps(row), flush=True)
            (args.out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
