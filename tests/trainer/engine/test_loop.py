"""The training loop on a tiny random Llama, quantised to NF4 like a real base model."""

import json
import math

import pytest

from tests.trainer.tiny_llm import load_nf4_with_adapter
from trainer.engine.checkpoint import ADAPTER_DIR, CHECKPOINT_DIR, METADATA_FILE
from trainer.engine.config import TrainConfig
from trainer.engine.data import tokenize_split
from trainer.engine.hooks import (
    CHECKPOINTING_HINT,
    OUT_OF_MEMORY,
    CheckpointMismatch,
    RecordingHooks,
    TrainingOutOfMemory,
)
from trainer.engine.loop import MODEL_DOES_NOT_FIT, train
from trainer.engine.toy import COLOURS, build_tiny_model, colour_conversation

TRAIN = [colour_conversation(thing) for thing in COLOURS] * 2
WRONG = {"sky": "red", "grass": "blue", "snow": "black", "blood": "green", "sun": "white"}
# Validation answers contradict training: once the format is learnt, validation loss rises.
CONTRADICTING = [colour_conversation(thing, WRONG[thing]) for thing in COLOURS]


def adapter_tensors(directory):
    from safetensors.torch import load_file

    return load_file(directory / "adapter_model.safetensors")


def validation_loss_with_adapter(model_dir, adapter_dir, conversations):
    """Validation loss computed apart from the loop: base loaded in NF4, adapter loaded by peft."""
    import torch
    from transformers import AutoTokenizer

    from trainer.engine.data import collate
    from trainer.engine.steps import assistant_loss, label_count

    model = load_nf4_with_adapter(model_dir, adapter_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    examples = tokenize_split(tokenizer, conversations, 128, "tiny").examples
    batch = collate(examples, tokenizer.pad_token_id)
    with torch.no_grad():
        return assistant_loss(model, batch, "cpu").item() / label_count(batch)


@pytest.fixture(scope="module")
def early_stopped(tiny_model_dir, tmp_path_factory):
    hooks = RecordingHooks()
    output = tmp_path_factory.mktemp("early")
    config = TrainConfig(
        rank=4, learning_rate=0.05, batch_size=5, epochs=20, eval_every=1, patience=2
    )
    result = train(
        model_dir=tiny_model_dir,
        config=config,
        train_conversations=TRAIN,
        validation_conversations=CONTRADICTING,
        output_dir=output,
        hooks=hooks,
    )
    return result, hooks, output


def test_early_stopping_fires_after_patience_evaluations_without_improvement(early_stopped):
    result, hooks, _ = early_stopped
    assert result.stop_reason == "early_stopped" and result.early_stopped
    assert result.final_step < result.total_steps == 40
    after_best = [e for e in hooks.evaluations if e.step > result.best_step]
    assert len(after_best) == 2 and not any(e.is_best for e in after_best)
    assert all(e.val_loss >= result.best_val_loss for e in after_best)
    assert result.best_val_loss == min(e.val_loss for e in hooks.evaluations)


def test_the_adapter_kept_is_the_best_not_the_last(early_stopped, tiny_model_dir):
    result, hooks, output = early_stopped
    metadata = json.loads((output / ADAPTER_DIR / METADATA_FILE).read_text())
    assert metadata["step"] == result.best_step < result.final_step
    measured = validation_loss_with_adapter(tiny_model_dir, output / ADAPTER_DIR, CONTRADICTING)
    assert measured == pytest.approx(result.best_val_loss, abs=1e-4)
    assert measured != pytest.approx(hooks.evaluations[-1].val_loss, abs=1e-3)


def test_progress_reports_every_step_with_warmup_then_cosine_learning_rate(early_stopped):
    result, hooks, _ = early_stopped
    assert [p.step for p in hooks.steps] == list(range(1, result.final_step + 1))
    total, warmup, peak = 40, math.ceil(0.03 * 40), 0.05
    for progress in hooks.steps:
        done = progress.step - 1  # scheduler steps taken before this optimizer step
        if done < warmup:
            expected = peak * done / warmup
        else:
            expected = peak * 0.5 * (1 + math.cos(math.pi * (done - warmup) / (total - warmup)))
        assert progress.learning_rate == pytest.approx(expected)
        assert progress.total_steps == total and progress.tokens_per_s > 0
        assert progress.grad_norm > 0 and progress.eta_seconds >= 0
    assert hooks.heartbeats >= result.final_step


def test_start_reports_lora_parameter_count_on_all_linear_layers(early_stopped, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    _, hooks, _ = early_stopped
    # rank 4 × (in + out) per layer: q 64+64, k 64+32, v 64+32, o 64+64, gate 64+128,
    # up 64+128, down 128+64 = 4 × 1024 per block, two blocks.
    assert hooks.start.trainable_params == 2 * 4 * 1024
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).num_parameters()
    assert hooks.start.total_params == base + 2 * 4 * 1024
    assert hooks.start.train_examples == 10 and hooks.start.validation_examples == 5
    assert hooks.start.environment["device"] == "cpu"
    assert hooks.start.environment["compute_dtype"] == "float32"
    assert set(hooks.start.environment["versions"]) >= {"torch", "peft", "bitsandbytes"}


def resume_config():
    return TrainConfig(rank=4, learning_rate=0.02, batch_size=2, max_steps=6, eval_every=3)


@pytest.fixture(scope="module")
def interrupted_and_resumed(tiny_model_dir, tmp_path_factory):
    runs = {}
    for name, stop_after in (("whole", None), ("stopped", 4)):
        hooks = RecordingHooks(stop_after=stop_after)
        output = tmp_path_factory.mktemp(name)
        result = train(
            model_dir=tiny_model_dir,
            config=resume_config(),
            train_conversations=TRAIN,
            validation_conversations=CONTRADICTING,
            output_dir=output,
            hooks=hooks,
        )
        runs[name] = (result, hooks, output)
    hooks = RecordingHooks()
    output = tmp_path_factory.mktemp("resumed")
    result = train(
        model_dir=tiny_model_dir,
        config=resume_config(),
        train_conversations=TRAIN,
        validation_conversations=CONTRADICTING,
        output_dir=output,
        hooks=hooks,
        resume_from=runs["stopped"][2] / CHECKPOINT_DIR,
    )
    runs["resumed"] = (result, hooks, output)
    return runs


def test_a_stop_request_ends_the_run_at_that_step_with_a_checkpoint(interrupted_and_resumed):
    result, hooks, output = interrupted_and_resumed["stopped"]
    assert (result.stop_reason, result.final_step) == ("stopped", 4)
    state = json.loads((output / CHECKPOINT_DIR / "state.json").read_text())
    assert state["loop"]["step"] == 4 and state["config"] == resume_config().as_dict()
    assert [step for _, step in hooks.checkpoints] == [3, 4]


def test_resuming_reaches_the_same_result_as_an_uninterrupted_run(interrupted_and_resumed):
    whole, whole_hooks, whole_dir = interrupted_and_resumed["whole"]
    resumed, resumed_hooks, resumed_dir = interrupted_and_resumed["resumed"]
    assert resumed_hooks.start.start_step == 4
    assert [p.step for p in resumed_hooks.steps] == [5, 6]
    assert [p.train_loss for p in resumed_hooks.steps] == pytest.approx(
        [p.train_loss for p in whole_hooks.steps[4:]], abs=1e-5
    )
    assert resumed.best_val_loss == pytest.approx(whole.best_val_loss, abs=1e-5)
    assert resumed.best_step == whole.best_step
    for part in (ADAPTER_DIR, f"{CHECKPOINT_DIR}/current_adapter"):
        expected, got = adapter_tensors(whole_dir / part), adapter_tensors(resumed_dir / part)
        assert expected.keys() == got.keys()
        for key, tensor in expected.items():
            assert (tensor - got[key]).abs().max().item() < 1e-5, key


def test_a_resumed_run_keeps_the_optimizer_it_started_with(
    interrupted_and_resumed, tiny_model_dir, tmp_path, monkeypatch
):
    """Resumed on a machine with less memory, the plan would pick 8-bit AdamW states; the
    checkpoint's fp32 states must go on with the arithmetic they were made by."""
    import dataclasses

    import torch

    from trainer.engine import memory_plan, modeling
    from trainer.engine.hooks import TrainHooks
    from trainer.engine.setup import set_up

    checkpoint = interrupted_and_resumed["stopped"][2] / CHECKPOINT_DIR
    assert json.loads((checkpoint / "state.json").read_text())["optimizer"] == "adamw"

    def short_of_memory(*args, **kwargs):
        return dataclasses.replace(memory_plan.plan_memory(*args, **kwargs), optimizer="adamw_8bit")

    monkeypatch.setattr(modeling, "plan_memory", short_of_memory)
    session = set_up(
        model_dir=tiny_model_dir,
        config=resume_config(),
        train_conversations=TRAIN,
        validation_conversations=CONTRADICTING,
        output_dir=tmp_path,
        hooks=TrainHooks(),
        resume_from=checkpoint,
        adapter_metadata={},
    )
    assert session.memory_plan.optimizer == "adamw"
    assert type(session.optimizer) is torch.optim.AdamW
    assert session.state.step == 4


@pytest.mark.parametrize("packed", [False, True])
def test_a_resumed_run_keeps_the_batches_it_started_with(
    interrupted_and_resumed, tiny_model_dir, tmp_path, monkeypatch, packed
):
    """With "--packing auto" a run packs where variable-length attention runs (a GPU), not here; a
    resume goes on with the checkpoint's batches, whatever the machine it resumes on decides."""
    import shutil

    from trainer.engine import packed_attention
    from trainer.engine.hooks import TrainHooks
    from trainer.engine.setup import set_up

    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(interrupted_and_resumed["stopped"][2] / CHECKPOINT_DIR, checkpoint)
    state = json.loads((checkpoint / "state.json").read_text())
    assert state["config"]["packing"] == "auto" and state["packed"] is False
    state["packed"] = packed  # as if written where auto packed
    (checkpoint / "state.json").write_text(json.dumps(state))
    monkeypatch.setattr(packed_attention, "varlen_available", lambda device: not packed)
    session = set_up(
        model_dir=tiny_model_dir,
        config=resume_config(),
        train_conversations=TRAIN,
        validation_conversations=CONTRADICTING,
        output_dir=tmp_path / "out",
        hooks=TrainHooks(),
        resume_from=checkpoint,
        adapter_metadata={},
    )
    assert (session.packed_row_tokens is not None) is packed


def test_training_with_the_optimizer_in_cpu_memory_learns_the_same(
    tiny_model_dir, tmp_path, monkeypatch
):
    """On CPU the "device" weights stay float32, so the host optimizer must match AdamW."""
    import dataclasses

    from trainer.engine import memory_plan, modeling

    config = TrainConfig(rank=4, learning_rate=0.02, batch_size=2, max_steps=3, eval_every=3)
    runs = {}
    for name in ("adamw", "adamw_host"):

        def planned(*args, optimizer=name, **kwargs):
            chosen = memory_plan.plan_memory(*args, **kwargs)
            return dataclasses.replace(chosen, optimizer=optimizer)

        monkeypatch.setattr(modeling, "plan_memory", planned)
        hooks = RecordingHooks()
        result = train(
            model_dir=tiny_model_dir,
            config=config,
            train_conversations=TRAIN,
            validation_conversations=CONTRADICTING,
            output_dir=tmp_path / name,
            hooks=hooks,
        )
        assert result.environment["memory_plan"]["optimizer"] == name
        runs[name] = [p.train_loss for p in hooks.steps]
    assert runs["adamw_host"] == pytest.approx(runs["adamw"], abs=1e-6)


def test_resuming_with_other_settings_is_refused(interrupted_and_resumed, tiny_model_dir, tmp_path):
    checkpoint = interrupted_and_resumed["stopped"][2] / CHECKPOINT_DIR
    with pytest.raises(CheckpointMismatch, match="rank 4 ≠ 8"):
        train(
            model_dir=tiny_model_dir,
            config=TrainConfig(rank=8, learning_rate=0.02, batch_size=2, max_steps=6, eval_every=3),
            train_conversations=TRAIN,
            validation_conversations=CONTRADICTING,
            output_dir=tmp_path,
            resume_from=checkpoint,
        )


def test_resuming_onto_another_base_model_is_refused(interrupted_and_resumed, tmp_path):
    other = build_tiny_model(tmp_path / "other", vocab_size=64)
    checkpoint = interrupted_and_resumed["stopped"][2] / CHECKPOINT_DIR
    with pytest.raises(CheckpointMismatch, match="vocab_size"):
        train(
            model_dir=other,
            config=resume_config(),
            train_conversations=TRAIN,
            validation_conversations=CONTRADICTING,
            output_dir=tmp_path / "out",
            resume_from=checkpoint,
        )


def test_gradient_accumulation_matches_one_big_batch(tiny_model_dir, tmp_path):
    """Micro-batches of 2 accumulated twice give the step that one batch of 4 gives: the loss is
    the mean over the step's assistant tokens however they fall into batches."""
    four = TRAIN[:4]
    adapters = []
    for batch_size, grad_accum in ((4, 1), (2, 2)):
        config = TrainConfig(
            rank=4, learning_rate=0.02, batch_size=batch_size, grad_accum=grad_accum,
            max_steps=1, dropout=0.0, warmup_ratio=0.0,
        )  # fmt: skip
        output = tmp_path / f"b{batch_size}"
        result = train(
            model_dir=tiny_model_dir,
            config=config,
            train_conversations=four,
            validation_conversations=[],
            output_dir=output,
        )
        assert result.final_step == 1 and result.best_val_loss is None
        adapters.append(adapter_tensors(output / ADAPTER_DIR))
    for key, tensor in adapters[0].items():
        assert (tensor - adapters[1][key]).abs().max().item() < 1e-5, key


@pytest.mark.parametrize(
    "error",
    [
        "torch.OutOfMemoryError",
        "RuntimeError: [enforce fail at alloc_cpu.cpp] DefaultCPUAllocator: not enough memory",
    ],
)
def test_running_out_of_memory_says_what_to_lower(tiny_model_dir, tmp_path, monkeypatch, error):
    import torch

    def exhausted(*args, **kwargs):
        if error == "torch.OutOfMemoryError":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        raise RuntimeError(error)

    monkeypatch.setattr("trainer.engine.steps.assistant_loss", exhausted)
    config = TrainConfig(rank=4, batch_size=4, max_seq_len=64, max_steps=2)
    with pytest.raises(TrainingOutOfMemory) as raised:
        train(
            model_dir=tiny_model_dir,
            config=config,
            train_conversations=TRAIN,
            validation_conversations=[],
            output_dir=tmp_path,
        )
    assert str(raised.value) == OUT_OF_MEMORY.format(
        device="cpu", batch_size=4, max_seq_len=64, checkpointing_hint=CHECKPOINTING_HINT
    )
    assert "--batch-size" in str(raised.value) and "--max-seq-len" in str(raised.value)


def test_a_base_model_too_big_for_the_device_says_so(tiny_model_dir, tmp_path, monkeypatch):
    import torch

    def too_big(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 30.00 GiB")

    monkeypatch.setattr("trainer.engine.setup.load_qlora_model", too_big)
    with pytest.raises(TrainingOutOfMemory) as raised:
        train(
            model_dir=tiny_model_dir,
            config=TrainConfig(rank=4),
            train_conversations=TRAIN,
            validation_conversations=[],
            output_dir=tmp_path,
        )
    assert str(raised.value) == MODEL_DOES_NOT_FIT.format(model=tiny_model_dir, device="cpu")
