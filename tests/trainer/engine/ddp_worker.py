"""Run by test_distributed under `accelerate launch`: trains the tiny model and writes what
this process's hooks saw to <output>/hooks-rank<RANK>.json."""

import json
import os
import sys
from pathlib import Path

from trainer.engine.config import TrainConfig
from trainer.engine.hooks import RecordingHooks
from trainer.engine.loop import train
from trainer.engine.toy import COLOURS, colour_conversation

CONFIG = TrainConfig(
    rank=4, learning_rate=0.02, batch_size=2, max_steps=2, dropout=0.0, warmup_ratio=0.0
)
TRAIN = [colour_conversation(thing) for thing in COLOURS] * 2


def main(model_dir: str, output_dir: str) -> None:
    hooks = RecordingHooks()
    result = train(
        model_dir=model_dir,
        config=CONFIG,
        train_conversations=TRAIN,
        validation_conversations=[],
        output_dir=Path(output_dir),
        hooks=hooks,
    )
    record = {
        "steps": [p.train_loss for p in hooks.steps],
        "started": hooks.start is not None,
        "stop_questions": hooks.stop_questions,
        "final_step": result.final_step,
        "world_size": result.environment["world_size"],
    }
    rank = os.environ.get("RANK", "0")
    (Path(output_dir) / f"hooks-rank{rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(*sys.argv[1:])
