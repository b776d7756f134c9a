"""CPU time of a DPO round on SmolLM2-135M-Instruct: the engine's own ``train`` with
``method="dpo"``, from a one-step SFT adapter, on pairs made from the demo dataset.

    .venv/bin/python benchmarks/dpo_cpu.py [--pairs 40] [--batch-size 8] [--threads 2]

Each pair's chosen side is a demo conversation (about 100 tokens); its rejected side is the
same prompt answered with another conversation's answer. A fifth of the pairs are held out
for validation, evaluated once, at the end of the epoch. Reports the set-up (model load and
the reference's log-probabilities), seconds per step and the whole round, and writes
benchmarks/results/dpo_cpu_<date>.json with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trainer.engine.config import TrainConfig  # noqa: E402
from trainer.engine.data import PreferencePair  # noqa: E402
from trainer.engine.hooks import RecordingHooks, StartInfo  # noqa: E402
from trainer.engine.loop import train  # noqa: E402
from trainer.engine.model_store import resolve_model_dir  # noqa: E402

DEMO = ROOT / "trainer" / "demo_data" / "demo.jsonl"


def demo_pairs(count: int) -> list[PreferencePair]:
    conversations = [json.loads(line)["messages"] for line in DEMO.read_text().splitlines()]
    pairs = []
    for index in range(count):
        chosen = conversations[index]
        other = conversations[(index + 1) % len(conversations)]
        rejected = [*chosen[:-1], other[-1]]
        pairs.append(PreferencePair(chosen=chosen, rejected=rejected))
    return pairs


class TimedHooks(RecordingHooks):
    """Also notes when training starts: set-up (load, reference log-probs) is over."""

    def on_start(self, info: StartInfo) -> None:
        super().on_start(info)
        self.started_at = time.monotonic()


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="converted SmolLM2 (default: convert)")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "var" / "models")
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-seq-len", type=int, default=256)
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / f"benchmarks/results/dpo_cpu_{time.strftime('%Y-%m-%d')}.json",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model_dir = args.model_dir or resolve_model_dir("smollm2-135m", args.cache_dir)
    pairs = demo_pairs(args.pairs)
    held_out = max(1, len(pairs) // 5)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        sft_started = time.monotonic()
        sft = TrainConfig(max_steps=1, batch_size=args.batch_size, max_seq_len=args.max_seq_len)
        train(
            model_dir=model_dir,
            config=sft,
            train_conversations=[p.chosen for p in pairs],
            validation_conversations=[],
            output_dir=Path(tmp) / "sft",
        )
        sft_seconds = time.monotonic() - sft_started
        config = TrainConfig.for_method(
            "dpo",
            epochs=1,
            batch_size=args.batch_size,
            max_seq_len=args.max_seq_len,
            eval_every=10_000,  # once, at the epoch's end
        )
        hooks = TimedHooks()
        dpo_started = time.monotonic()
        result = train(
            model_dir=model_dir,
            config=config,
            train_conversations=pairs[held_out:],
            validation_conversations=pairs[:held_out],
            output_dir=Path(tmp) / "dpo",
            hooks=hooks,
            start_adapter=Path(tmp) / "sft" / "adapter",
        )
    setup_seconds = hooks.started_at - dpo_started
    first_step = hooks.steps[0].elapsed_seconds - setup_seconds
    step_times = [first_step] + [
        b.elapsed_seconds - a.elapsed_seconds for a, b in pairwise(hooks.steps)
    ]
    row = {
        "benchmark": "benchmarks/dpo_cpu.py",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "model": "SmolLM2-135M-Instruct (packaged GGUF, converted), NF4, float32 compute",
        "threads": args.threads,
        "load_average_1min_before": load_before,
        "load_average_after": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "train_pairs": hooks.start.train_examples,
        "validation_pairs": hooks.start.validation_examples,
        "config": config.as_dict(),
        "steps": result.final_step,
        "setup_seconds_load_and_reference": round(setup_seconds, 2),
        "seconds_per_step": [round(t, 2) for t in step_times],
        "validation_and_save_seconds": round(
            result.wall_seconds - hooks.steps[-1].elapsed_seconds, 2
        ),
        "dpo_round_wall_seconds": round(result.wall_seconds, 2),
        "sft_one_step_wall_seconds": round(sft_seconds, 2),
        "train_loss": [round(p.train_loss, 4) for p in hooks.steps],
        "validation": [
            {"loss": e.val_loss, "accuracy": e.reward_accuracy, "margin": e.reward_margin}
            for e in hooks.evaluations
        ],
        "peak_memory_bytes": result.peak_memory_bytes,
    }
    print(json.dumps(row, indent=2))
    args.out.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
