"""CPU throughput of a QLoRA training step on SmolLM2-135M-Instruct with the default settings.

    .venv/bin/python benchmarks/train_cpu.py [--model-dir DIR] [--steps 5] [--warmup 2]

The step is the engine's own (trainer.engine.steps.train_step) on batches built the way
training builds them: the demo dataset rendered with the model's chat template, grouped by
length, batch size 8, rank 16 on all linear layers, NF4 + double quantisation, float32 compute.
Each variant runs in its own process (OpenMP reads its wait policy when torch loads):
  - 2 threads, OMP_WAIT_POLICY=PASSIVE (what `manage.py finetune` sets unless the user chose),
    the prepared step (what finetune runs) and the plain one (the model as loaded),
  - 1 thread, PASSIVE,
  - 2 threads, the OpenMP default (threads spin while they wait),
  - 2 threads, PASSIVE, gradient checkpointing on (the CPU default keeps every activation),
  - 2 threads, PASSIVE, packed rows (--packing on; off by default on a CPU).
On a shared machine whose cores are busy, spinning threads steal each other's time.
Writes benchmarks/results/train_cpu_<date>.json; the machine and its load go in the same file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trainer.engine.checkpoint import directory_size  # noqa: E402
from trainer.engine.config import TrainConfig  # noqa: E402
from trainer.engine.data import collate, length_grouped_batches, tokenize_split  # noqa: E402
from trainer.engine.distributed import DistContext  # noqa: E402
from trainer.engine.environment import describe_environment, peak_memory_bytes  # noqa: E402
from trainer.engine.hooks import TrainHooks  # noqa: E402
from trainer.engine.model_store import resolve_model_dir  # noqa: E402
from trainer.engine.modeling import (  # noqa: E402
    load_qlora_model,
    load_tokenizer,
    prepare_for_training,
)
from trainer.engine.packing import collate_packed, packed_batches, token_budget  # noqa: E402
from trainer.engine.steps import StepContext, token_count, train_step  # noqa: E402

DEMO = ROOT / "trainer" / "demo_data" / "demo.jsonl"


def measure(
    model_dir: Path,
    config: TrainConfig,
    batches: list,
    steps: int,
    warmup: int,
    threads: int,
    prepared: bool,
    tokens_planned: int,
) -> dict:
    import torch
    from transformers import get_scheduler

    torch.set_num_threads(threads)
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    model = load_qlora_model(model_dir, config, "cpu")
    head, plan = None, None
    if prepared:
        packing = config.packing == "on"
        plan, head = prepare_for_training(
            model, config, "cpu", tokens=tokens_planned, world_size=1, packing=packing
        )
    load_seconds = time.monotonic() - started
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate)
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=1, num_training_steps=100)
    step_context = StepContext(
        params=params,
        optimizer=optimizer,
        scheduler=scheduler,
        config=config,
        context=DistContext(),
        report=TrainHooks(),
        device="cpu",
        head=head,
    )
    timings, tokens = [], []
    for number in range(warmup + steps):
        batch = batches[number % len(batches)]
        began = time.monotonic()
        stats = train_step(model, [batch], step_context)
        seconds = time.monotonic() - began
        if number >= warmup:
            timings.append(seconds)
            tokens.append(token_count(batch))
        print(f"  step {number + 1}: {seconds:.2f} s, loss {stats.loss:.4f}", flush=True)
    median = statistics.median(timings)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        adapter_bytes = directory_size(Path(tmp))
    return {
        "threads": threads,
        "engine": "prepared" if prepared else "plain",
        "memory_plan": plan.summary() if plan else None,
        "load_average_1min_before": load_before,
        "gradient_checkpointing": config.gradient_checkpointing,
        "packing": config.packing,
        "load_seconds": round(load_seconds, 2),
        "seconds_per_step_median": round(median, 3),
        "seconds_per_step_all": [round(t, 3) for t in timings],
        "tokens_per_step_mean": statistics.mean(tokens),
        "tokens_per_s_median": round(statistics.median(tokens) / median, 1),
        "adapter_bytes": adapter_bytes,
        "peak_rss_bytes_so_far": peak_memory_bytes("cpu"),
    }


def machine() -> dict:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()[:12]
    return {"lscpu": lscpu, "load_average": os.getloadavg(), "cpu_count": os.cpu_count()}


# "prepared" is the step `manage.py finetune` runs (prepare_for_training: fused norms and
# SwiGLU, cached dequantised weights, chunked output layer); "plain" the model as loaded.
VARIANTS = [
    {"threads": 2, "omp_wait_policy": "PASSIVE", "gradient_checkpointing": "off", "prepared": 1},
    {"threads": 2, "omp_wait_policy": "PASSIVE", "gradient_checkpointing": "off", "prepared": 0},
    {"threads": 1, "omp_wait_policy": "PASSIVE", "gradient_checkpointing": "off", "prepared": 1},
    {"threads": 2, "omp_wait_policy": "default", "gradient_checkpointing": "off", "prepared": 1},
    {"threads": 2, "omp_wait_policy": "PASSIVE", "gradient_checkpointing": "on", "prepared": 1},
    {
        "threads": 2,
        "omp_wait_policy": "PASSIVE",
        "gradient_checkpointing": "off",
        "prepared": 1,
        "packing": "on",
    },
]


def run_variant(args: argparse.Namespace) -> None:
    """In a child process: one variant, its row as JSON on the last line of stdout."""
    import torch

    variant = json.loads(args.variant)
    model_dir = args.model_dir or resolve_model_dir("smollm2-135m", args.cache_dir)
    config = TrainConfig(
        gradient_checkpointing=variant["gradient_checkpointing"],
        packing=variant.get("packing", "auto"),
    )
    tokenizer = load_tokenizer(model_dir)
    conversations = [json.loads(line)["messages"] for line in DEMO.read_text().splitlines()]
    split = tokenize_split(tokenizer, conversations, config.max_seq_len, str(model_dir))
    # As finetune plans it: micro-batches of up to batch size × the longest example.
    budget = token_budget(config.batch_size, split.lengths)
    if config.packing == "on":
        order = packed_batches(split.lengths, budget, seed=0, epoch=0)
        batches = [
            collate_packed([split.examples[i] for i in ids])
            for ids in order[: args.steps + args.warmup]
        ]
    else:
        order = length_grouped_batches(split.lengths, config.batch_size, seed=0, epoch=0)
        batches = [
            collate([split.examples[i] for i in ids], tokenizer.pad_token_id)
            for ids in order[: args.steps + args.warmup]
        ]
    row = measure(
        model_dir,
        config,
        batches,
        args.steps,
        args.warmup,
        variant["threads"],
        bool(variant["prepared"]),
        budget,
    )
    row["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY", "default")
    row["environment"] = describe_environment(
        "cpu", torch.float32, world_size=1, memory_plan=row["memory_plan"] or {}
    )
    print(json.dumps(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="converted SmolLM2 (default: convert)")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "var" / "models")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / f"benchmarks/results/train_cpu_{time.strftime('%Y-%m-%d')}.json",
    )
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--variants", help="indices into VARIANTS, comma-separated (default all)")
    args = parser.parse_args()
    if args.variant:
        run_variant(args)
        return

    before = machine()
    rows = []
    chosen = [VARIANTS[int(i)] for i in args.variants.split(",")] if args.variants else VARIANTS
    for variant in chosen:
        print(json.dumps(variant), flush=True)
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        if variant["omp_wait_policy"] != "default":
            env["OMP_WAIT_POLICY"] = variant["omp_wait_policy"]
        command = [sys.executable, __file__, "--variant", json.dumps(variant)]
        command += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
        command += ["--cache-dir", str(args.cache_dir)]
        if args.model_dir:
            command += ["--model-dir", str(args.model_dir)]
        child = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        print(child.stdout, flush=True)
        rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
    result = {
        "benchmark": "benchmarks/train_cpu.py",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "model": "SmolLM2-135M-Instruct (packaged GGUF, converted to float32 safetensors)",
        "config": TrainConfig().as_dict(),
        "data": f"{DEMO.relative_to(ROOT)}: first {args.warmup + args.steps} length-grouped "
        "batches of 8",
        "results": rows,
        "machine_before": before,
        "machine_after": machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for row in rows:
        print(
            f"{row['engine']:>8}, {row['threads']} thread(s), "
            f"wait policy {row['omp_wait_policy']:>7}, checkpointing "
            f"{row['gradient_checkpointing']:>3}, packing {row['packing']:>4}: "
            f"{row['seconds_per_step_median']:.2f} s/step, "
            f"{row['tokens_per_s_median']:.0f} tokens/s, adapter {row['adapter_bytes'] / 1e6:.1f} "
            f"MB (load average before it {row['load_average_1min_before']:.1f})"
        )


if __name__ == "__main__":
    main()
