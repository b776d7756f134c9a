"""Generation speed on one GPU: the paths of issue 20's table and the engine's fast path.

    python benchmarks/generation_gpu.py --out DIR                  # Llama-3.1-8B shape
    python benchmarks/generation_gpu.py --out DIR --smoke          # 2 layers, 16 new tokens
    python benchmarks/generation_gpu.py --out DIR --smoke --device cpu   # tiny widths too
    python benchmarks/generation_gpu.py --out DIR --groups fast,merged   # some rows only

The model is made where it runs (no network): random bf16 weights of the Llama-3.1-8B shape and
the word-level tokenizer of ``benchmarks/qlora_gpu.py`` (saved once under --work), with a random
LoRA r16, alpha 32 on every linear layer (B not zero, so the adapter changes the answers). The
output layer keeps only the rows of the tokenizer's words: the other logits are exactly 0, below
the largest of the words' random logits, so greedy decoding never picks the end of turn (every
row generates all its new tokens) and every generated id decodes to a word (texts compare ids).

Prompts: 64 user turns of ~200 random words; greedy, 256 new tokens. Rows, by process (a group
loads the model once; peak memory is per row, weights included), in the order they run:

- fast: the engine's defaults (``load_model`` and ``generate`` with nothing chosen): base, then
  adapter, each with the batch from free memory;
- merged: plain transformers ``model.generate`` on the bf16 base with the LoRA merged
  (peft ``merge_and_unload``), batch 32;
- bf16: the engine's plain path unquantised, the adapter beside the layers, on and off, batch 32;
- nf4: the engine as the CUDA default was before the fast path: NF4 base, the adapter beside its
  layers, batch 32;
- fast32: the fast path's adapter at batch 32 (a fresh process: a second compilation).

Each timed call is preceded by a warm-up: on the plain paths a 4-token call, on the fast path the
same call (it compiles the decoding step; its seconds are reported as the first call). A row's
share of the bound: its tokens/s over batch × (copy bandwidth ÷ bytes of weights read per decode
step), the bandwidth measured in this run by a large device-to-device copy (bytes read plus
bytes written), the weights as allocated after loading less the input embedding table (a step
reads only its rows). Equality: the first --compare answers of each fast row against the plain
row with the same weights.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from qlora_gpu import (  # noqa: E402
    GIB,
    LORA,
    SEED,
    SHAPES,
    TARGETS,
    gpu_description,
    in_fresh_process,
    make_model,
)

RESULT_MARK = "GENERATION_GPU_ROW "
# In this order: the fast path first, so that a run cut short has measured it; the comparison
# rows next; the batch-32 fast row (a second compilation) last.
GROUPS = {
    # group: (load options, [(row, adapter on, "batch" for --batch or None for the engine's
    # choice, compiled)]); load options None: plain transformers, not the engine
    "fast": (
        {},
        [
            ("fast_base", False, None, True),
            ("fast_adapter", True, None, True),
            ("fast_adapter_eager", True, None, False),
        ],
    ),
    "merged": (None, [("merged_generate", True, "batch", False)]),
    "bf16": (
        {"quantization": "none", "lora": "separate"},
        [("bf16_adapter", True, "batch", False), ("bf16_base", False, "batch", False)],
    ),
    "nf4": ({"quantization": "nf4", "lora": "separate"}, [("nf4_adapter", True, "batch", False)]),
    "fast32": ({}, [("fast_adapter_b32", True, "batch", True)]),
}
LABELS = {
    "nf4_adapter": "engine before the fast path: NF4 + adapter beside the layers (CUDA default)",
    "bf16_adapter": "engine, bf16 + adapter beside the layers (`--quantization none`)",
    "bf16_base": "engine, bf16, adapter off",
    "merged_generate": "plain `model.generate`, LoRA merged, bf16",
    "fast_base": "fast path (new default), base, batch from free memory",
    "fast_adapter": "fast path (new default), adapter merged, batch from free memory",
    "fast_adapter_eager": "fast path, adapter merged, batch from free memory, not compiled",
    "fast_adapter_b32": "fast path, adapter merged, the fixed batch",
}
# fast row -> the plain row that ran the same weights
SAME_WEIGHTS = {
    "fast_base": "bf16_base",
    "fast_adapter": "merged_generate",
    "fast_adapter_eager": "merged_generate",
    "fast_adapter_b32": "merged_generate",
}
TINY_CPU_WIDTHS = {
    "vocab_size": 2048,
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}


# ---------------------------------------------------------------- preparing the model


def prepare(shape: dict, directory: Path, device: str) -> tuple[Path, Path]:
    """The random model (qlora_gpu's recipe), its output layer cut to the words, an adapter."""
    model_dir = make_model(shape, directory, device=device)
    keep_word_logits(model_dir)
    adapter_dir = directory.with_name(directory.name + "_adapter")
    if not (adapter_dir / "adapter_config.json").is_file():
        make_adapter(model_dir, adapter_dir, device)
    return model_dir, adapter_dir


def keep_word_logits(model_dir: Path) -> None:
    """Zero the output layer's rows of every id that is not a word of the tokenizer."""
    marker = model_dir / "word_logits_only"
    if marker.is_file():
        return
    import torch
    from safetensors.torch import load_file, save_file

    from trainer.engine.toy import SPECIALS, build_tokenizer

    index = model_dir / "model.safetensors.index.json"
    shard = (
        json.loads(index.read_text())["weight_map"]["lm_head.weight"]
        if index.is_file()
        else "model.safetensors"
    )
    tensors = load_file(model_dir / shard)
    keep = torch.zeros(tensors["lm_head.weight"].shape[0], dtype=torch.bool)
    keep[len(SPECIALS) : len(build_tokenizer())] = True
    tensors["lm_head.weight"][~keep] = 0
    save_file(tensors, model_dir / shard, metadata={"format": "pt"})
    marker.write_text("lm_head rows outside the tokenizer's words are zero\n")


def make_adapter(model_dir: Path, adapter_dir: Path, device: str) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.bfloat16, device_map={"": device}
    )
    torch.manual_seed(SEED)
    config = LoraConfig(
        r=LORA["r"], lora_alpha=LORA["alpha"], target_modules=TARGETS, init_lora_weights=False
    )
    get_peft_model(base, config).save_pretrained(adapter_dir)
    del base
    release(device)


def prompts(count: int, words: int) -> list[list[dict[str, str]]]:
    """User turns of ``words`` ± 10 % random words of the tokenizer, seeded."""
    from trainer.engine.toy import WORDS

    rng = random.Random(SEED)
    return [
        [
            {
                "role": "user",
                "content": " ".join(
                    rng.choices(WORDS, k=rng.randint(words * 9 // 10, words * 11 // 10))
                ),
            }
        ]
        for _ in range(count)
    ]


def copy_bandwidth(device: str, gib: float) -> float:
    """Bytes per second of a device-to-device copy, counting what is read and what is written."""
    import torch

    size = int(gib * GIB)
    source = torch.empty(size, dtype=torch.uint8, device=device)
    target = torch.empty_like(source)
    for _ in range(3):
        target.copy_(source)
    synchronize(device)
    began, repeats = time.perf_counter(), 20
    for _ in range(repeats):
        target.copy_(source)
    synchronize(device)
    bandwidth = 2 * size * repeats / (time.perf_counter() - began)
    del source, target
    release(device)
    return bandwidth


def release(device: str) -> None:
    """Give this (driver) process's device memory back, so the rows' processes find it free."""
    import gc

    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


# ---------------------------------------------------------------- one group, in its own process


def run_group(spec: dict) -> list[dict]:
    load_options, rows = GROUPS[spec["group"]]
    if load_options is None:
        return [merged_generate_row(spec, *rows[0])]
    from trainer.engine.generate import load_model

    device = spec["device"]
    options = dict(load_options)
    if not options and not device.startswith("cuda"):
        options["lora"] = "merged"  # CUDA's default; on CPU the fast path must be asked for
    loaded = load_model(
        spec["model_dir"], adapter_dir=spec["adapter_dir"], device=device, **options
    )
    weight_bytes = read_bytes_per_step(loaded.model, device)
    return [
        engine_row(spec, loaded, weight_bytes, name, use_adapter, batch, compiled)
        for name, use_adapter, batch, compiled in rows
    ]


def engine_row(spec, loaded, weight_bytes, name, use_adapter, batch, compiled) -> dict:
    from trainer.engine.generate import DecodingConfig, generate

    conversations = prompts(spec["prompts"], spec["prompt_words"])
    decoding = DecodingConfig(max_new_tokens=spec["new_tokens"])
    batches: list[int] = []

    def call(decoding, conversations):
        return generate(
            loaded,
            conversations,
            decoding=decoding,
            use_adapter=use_adapter,
            batch_size=spec["batch"] if batch else None,
            compiled=compiled,
            on_batch=lambda indices, _: batches.append(len(indices)),
        )

    # A compiled step is recorded for one cache length: its warm-up is the very same call.
    fast = loaded.precision.merged and compiled
    warm = (
        (decoding, conversations)
        if fast
        else (DecodingConfig(max_new_tokens=4), conversations[: spec["batch"]])
    )
    first_call = timed(spec["device"], lambda: call(*warm))[1]
    batches.clear()
    results, seconds, peak = timed(spec["device"], lambda: call(decoding, conversations), peak=True)
    return row_result(
        spec,
        name,
        texts=[r.text for r in results],
        tokens=sum(r.token_count for r in results),
        seconds=seconds,
        peak=peak,
        batch=max(batches),
        weight_bytes=weight_bytes,
        first_call=first_call if fast else None,
        precision=loaded.precision.as_dict(),
    )


def merged_generate_row(spec: dict, name: str, *_options) -> dict:
    """transformers' own loop on the merged model: no engine code but the prompt rendering."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, GenerationConfig

    from trainer.engine.data import sorted_batches
    from trainer.engine.generate import load_tokenizer, render_prompts
    from trainer.engine.modeling import compute_dtype

    device = spec["device"]
    model = AutoModelForCausalLM.from_pretrained(
        spec["model_dir"], dtype=compute_dtype(device), device_map={"": device}
    )
    model = PeftModel.from_pretrained(model, spec["adapter_dir"]).merge_and_unload()
    model.eval()
    weight_bytes = read_bytes_per_step(model, device)
    tokenizer = load_tokenizer(spec["model_dir"])
    texts = render_prompts(tokenizer, prompts(spec["prompts"], spec["prompt_words"]))
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    batches = sorted_batches(lengths, spec["batch"])

    def call(new_tokens, batches):
        config = GenerationConfig(
            max_new_tokens=new_tokens,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        answers = {}
        with torch.inference_mode():
            for indices in batches:
                encoded = tokenizer(
                    [texts[i] for i in indices],
                    return_tensors="pt",
                    padding=True,
                    add_special_tokens=False,
                ).to(device)
                out = model.generate(**encoded, generation_config=config)
                for i, ids in zip(indices, out[:, encoded["input_ids"].shape[1] :], strict=True):
                    answers[i] = ids.tolist()
        return [answers[i] for i in range(len(answers))]

    timed(device, lambda: call(4, batches[:1]))
    ids, seconds, peak = timed(device, lambda: call(spec["new_tokens"], batches), peak=True)
    return row_result(
        spec,
        name,
        texts=[tokenizer.decode(row, skip_special_tokens=True).strip() for row in ids],
        tokens=sum(len(row) for row in ids),
        seconds=seconds,
        peak=peak,
        batch=max(len(b) for b in batches),
        weight_bytes=weight_bytes,
        first_call=None,
        precision={
            "quantization": "none",
            "dtype": str(compute_dtype(device)).removeprefix("torch."),
            "lora": "merged",
        },
    )


def timed(device: str, work, *, peak: bool = False):
    import torch

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    synchronize(device)
    began = time.perf_counter()
    result = work()
    synchronize(device)
    seconds = time.perf_counter() - began
    if not peak:
        return result, seconds
    return result, seconds, torch.cuda.max_memory_allocated() / GIB if cuda else None


def read_bytes_per_step(model, device: str) -> int:
    """Weights a decoding step reads: all that is allocated after loading (on CPU: parameters and
    buffers) less the input embedding table, of which a step reads one row a sequence."""
    import torch

    embedding = model.get_input_embeddings().weight
    table = embedding.numel() * embedding.element_size()
    if device.startswith("cuda"):
        return torch.cuda.memory_allocated() - table
    tensors = {t.data_ptr(): t for t in [*model.parameters(), *model.buffers()]}
    return sum(t.numel() * t.element_size() for t in tensors.values()) - table


def row_result(
    spec, name, *, texts, tokens, seconds, peak, batch, weight_bytes, first_call, precision
):
    tokens_per_s = tokens / seconds
    bound = batch * spec["bandwidth"] / weight_bytes
    return {
        "row": name,
        "configuration": LABELS[name],
        "precision": precision,
        "batch": batch,
        "prompts": spec["prompts"],
        "new_tokens": spec["new_tokens"],
        "generated_tokens": tokens,
        "every_row_generated_all": tokens == spec["prompts"] * spec["new_tokens"],
        "seconds": round(seconds, 2),
        "first_call_seconds": None if first_call is None else round(first_call, 1),
        "tokens_per_s": round(tokens_per_s, 1),
        "peak_gib": None if peak is None else round(peak, 2),
        "weight_gb_per_step": round(weight_bytes / 1e9, 3),
        "bound_tokens_per_s": round(bound, 1),
        "share_of_bound": round(tokens_per_s / bound, 4),
        "texts": texts[: spec["compare"]],
    }


def group_in_subprocess(spec: dict, timeout: int) -> list[dict]:
    try:
        result, lines = in_fresh_process(__file__, "--group-spec", spec, RESULT_MARK, timeout)
    except subprocess.TimeoutExpired:
        return [{"row": spec["group"], "error": f"timed out after {timeout} s"}]
    if result is not None:
        return result
    return [{"row": spec["group"], "error": "failed", "detail": lines[-8:]}]


# ---------------------------------------------------------------- the driver


def compare(rows: list[dict]) -> None:
    """Each fast row's first answers against the plain row that ran the same weights: how many
    are equal, and how many words each keeps in common from the start."""
    by_name = {row["row"]: row for row in rows if "texts" in row}
    for name, reference in SAME_WEIGHTS.items():
        if name not in by_name or reference not in by_name:
            continue
        pairs = list(zip(by_name[name]["texts"], by_name[reference]["texts"], strict=True))
        prefixes = [common_prefix(a.split(), b.split()) for a, b in pairs]
        by_name[name]["equal_to"] = reference
        by_name[name]["equal"] = f"{sum(a == b for a, b in pairs)}/{len(pairs)}"
        by_name[name]["common_prefix_words"] = prefixes


def compile_payoff(rows: list[dict]) -> str | None:
    """From how many decoding steps per call compiling earns back its first call: the base's
    first call less its timed one (compiling and recording the step, from a cold cache) over
    what a step saves (the adapter rows, compiled and not, at the same batch)."""
    by_name = {row["row"]: row for row in rows if "error" not in row}
    if not {"fast_base", "fast_adapter", "fast_adapter_eager"} <= by_name.keys():
        return None
    base = by_name["fast_base"]
    cost = base["first_call_seconds"] - base["seconds"]

    def step_seconds(row: dict) -> float:
        calls = -(-row["prompts"] // row["batch"])
        return row["seconds"] / (calls * row["new_tokens"])

    compiled, eager = by_name["fast_adapter"], by_name["fast_adapter_eager"]
    saved = step_seconds(eager) - step_seconds(compiled)
    pays = f"it pays from about {cost / saved:,.0f} decoding steps" if saved > 0 else "never pays"
    return (
        f"Compiling cost {cost:.1f} s once (fast_base's first call less its timed call); a "
        f"decoding step at batch {compiled['batch']} takes {step_seconds(compiled) * 1e3:.1f} ms "
        f"compiled, {step_seconds(eager) * 1e3:.1f} ms not: {pays} per call "
        "(steps = batches × new tokens)."
    )


def common_prefix(a: list[str], b: list[str]) -> int:
    pairs = zip(a, b, strict=False)  # answers of different lengths share a prefix too
    return next((n for n, (x, y) in enumerate(pairs) if x != y), min(len(a), len(b)))


def machine(device: str) -> dict:
    from trainer.engine.environment import cpu_name, library_versions

    described = {
        "python": platform.python_version(),
        "cpu": cpu_name(),
        "versions": library_versions(("torch", "transformers", "peft", "bitsandbytes", "triton")),
    }
    if device.startswith("cuda"):
        described.update(gpu_description())
    return described


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"# Generation on one device, {results['date']}",
        "",
        f"{m.get('gpu', m['cpu'])} ({m.get('nvidia_smi', 'CPU')}); copy bandwidth "
        f"{results['bandwidth_gb_s']:.0f} GB/s measured in this run; shape {results['shape']}; "
        f"{results['prompts']} prompts of ~{results['prompt_words']} words, "
        f"{results['new_tokens']} new tokens, greedy; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "",
        "| row | configuration | precision | batch | generated tokens/s | peak GiB "
        "| share of the bound | all tokens | equal to plain (same weights) | first call s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        if "error" in row:
            lines.append(f"| {row['row']} | {row['error']} | | | | | | | | |")
            continue
        equal = f"{row['equal']} vs {row['equal_to']}" if "equal" in row else "–"
        peak = "–" if row["peak_gib"] is None else f"{row['peak_gib']:.1f}"
        first = "–" if row["first_call_seconds"] is None else f"{row['first_call_seconds']}"
        lines.append(
            f"| {row['row']} | {row['configuration']} | {'/'.join(row['precision'].values())} "
            f"| {row['batch']} | "
            f"{row['tokens_per_s']:,.0f} | {peak} | {row['share_of_bound']:.1%} | "
            f"{'yes' if row['every_row_generated_all'] else 'no'} | {equal} | {first} |"
        )
    payoff = results.get("compile_payoff")
    if payoff:
        lines += ["", payoff]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group-spec", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--work", type=Path, default=Path("/tmp/generation_gpu"))
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--groups", default=",".join(GROUPS))
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--prompt-words", type=int, default=200)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32, help="batch of the fixed-batch rows")
    parser.add_argument("--compare", type=int, default=4, help="answers compared per fast row")
    parser.add_argument("--timeout", type=int, default=540, help="seconds per group")
    parser.add_argument("--smoke", action="store_true", help="2 layers, 8 prompts, 16 tokens")
    args = parser.parse_args()
    if args.group_spec:
        from trainer.engine.environment import prefer_runtime_settings

        prefer_runtime_settings()  # as manage.py does, before torch loads
        print(RESULT_MARK + json.dumps(run_group(json.loads(args.group_spec))), flush=True)
        return

    shape = dict(SHAPES["llama31_8b"])
    if args.smoke:
        shape["num_hidden_layers"] = 2
        args.prompts, args.new_tokens = min(args.prompts, 8), min(args.new_tokens, 16)
        if not args.device.startswith("cuda"):
            shape.update(TINY_CPU_WIDTHS)
    name = (
        "llama31_8b" + ("_smoke" if args.smoke else "") + ("" if "cuda" in args.device else "_cpu")
    )
    model_dir, adapter_dir = prepare(shape, args.work / name, args.device)
    bandwidth = copy_bandwidth(args.device, 4 if "cuda" in args.device else 0.25)
    date = time.strftime("%Y-%m-%d")
    results = {
        "date": date,
        "machine": machine(args.device),
        "shape": name,
        "bandwidth_gb_s": round(bandwidth / 1e9, 1),
        "prompts": args.prompts,
        "prompt_words": args.prompt_words,
        "new_tokens": args.new_tokens,
        "rows": [],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    groups = args.groups.split(",")
    # A run of some groups only (a run of all may not fit one 10-minute call) names them.
    some = "" if set(groups) == set(GROUPS) else "_" + "-".join(groups)
    stem = args.out / f"generation_gpu_{'smoke_' if args.smoke else ''}{date}{some}"
    for group in groups:
        spec = {
            "group": group,
            "device": args.device,
            "model_dir": str(model_dir),
            "adapter_dir": str(adapter_dir),
            "bandwidth": bandwidth,
            **{
                k: getattr(args, k)
                for k in ("prompts", "prompt_words", "new_tokens", "batch", "compare")
            },
        }
        started = time.monotonic()
        rows = group_in_subprocess(spec, args.timeout)
        print(f"group {group}: {time.monotonic() - started:.0f} s", flush=True)
        results["rows"].extend(rows)
        compare(results["rows"])
        if args.device.startswith("cuda"):  # transformers compiles on CUDA only
            results["compile_payoff"] = compile_payoff(results["rows"])
        stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
        stem.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
