"""Two CPU processes under `accelerate launch` (gloo): the same steps as one process that
accumulates the same two micro-batches, and only rank 0 reports and writes.

Marked slow: three processes each import torch, transformers and peft (about 25 s on a quiet
2-core machine, over a minute on a busy one).
"""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.trainer.engine import ddp_worker
from trainer.engine.checkpoint import ADAPTER_DIR
from trainer.engine.hooks import RecordingHooks
from trainer.engine.loop import train


def adapter_tensors(directory):
    from safetensors.torch import load_file

    return load_file(directory / "adapter_model.safetensors")


@pytest.mark.slow
def test_two_processes_train_like_one_accumulating_their_batches(tiny_model_dir, tmp_path):
    two = tmp_path / "two"
    two.mkdir()
    accelerate = Path(sys.executable).with_name("accelerate")
    launch = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2"]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    launch += ["--main_process_port", "0", ddp_worker.__file__, str(tiny_model_dir), str(two)]
    completed = subprocess.run(launch, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]

    # One process, micro-batches of 2 accumulated twice: the batches the two ranks shared.
    one = tmp_path / "one"
    recorder = RecordingHooks()
    train(
        model_dir=tiny_model_dir,
        config=dataclasses.replace(ddp_worker.CONFIG, grad_accum=2),
        train_conversations=ddp_worker.TRAIN,
        validation_conversations=[],
        output_dir=one,
        hooks=recorder,
    )

    rank0 = json.loads((two / "hooks-rank0.json").read_text())
    rank1 = json.loads((two / "hooks-rank1.json").read_text())
    assert rank0["world_size"] == 2 and rank0["final_step"] == rank1["final_step"] == 2
    assert rank0["started"] and len(rank0["steps"]) == 2
    assert not rank1["started"] and rank1["steps"] == []  # only rank 0 reports
    assert rank1["stop_questions"] == 2  # but every rank is asked whether to stop
    assert rank0["steps"] == pytest.approx([p.train_loss for p in recorder.steps], abs=1e-5)
    expected, got = adapter_tensors(one / ADAPTER_DIR), adapter_tensors(two / ADAPTER_DIR)
    for key, tensor in expected.items():
        assert (tensor - got[key]).abs().max().item() < 1e-5, key
