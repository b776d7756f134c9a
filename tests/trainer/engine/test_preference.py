"""DPO on the engine: the loss against TRL's own, and a DPO run from an SFT adapter on the toy
model (NF4-quantised like a real base)."""

import math

import pytest

from tests.trainer.tiny_llm import load_nf4_with_adapter
from trainer.engine.checkpoint import ADAPTER_DIR
from trainer.engine.config import TrainConfig
from trainer.engine.data import PreferencePair, collate_pairs, tokenize_pairs
from trainer.engine.hooks import RecordingHooks, TrainingError
from trainer.engine.loop import train
from trainer.engine.preference import dpo_losses, sequence_logps
from trainer.engine.setup import DPO_NEEDS_ADAPTER
from trainer.engine.toy import COLOURS, colour_conversation

WRONG = {"sky": "red", "grass": "blue", "snow": "black", "blood": "green", "sun": "white"}
PAIRS = [
    PreferencePair(chosen=colour_conversation(t), rejected=colour_conversation(t, WRONG[t]))
    for t in COLOURS
]
# The SFT adapter is taught to refuse, so DPO has something to turn around: a colour over "no".
REFUSALS = [
    PreferencePair(chosen=colour_conversation(t), rejected=colour_conversation(t, "no"))
    for t in COLOURS
]
SFT_DATA = [colour_conversation(t, "no") for t in COLOURS] * 2


@pytest.fixture(scope="module")
def trl_trainer(tiny_model_dir, tmp_path_factory):
    """TRL's DPOTrainer on the toy model (full precision), reference log-probs precomputed."""
    from datasets import Dataset as HFDataset
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    from trainer.engine.toy import build_tokenizer

    rows = [
        {
            "prompt": colour_conversation(t)[:-1],
            "chosen": [colour_conversation(t)[-1]],
            "rejected": [colour_conversation(t, WRONG[t])[-1]],
        }
        for t in COLOURS
    ]
    args = DPOConfig(
        output_dir=str(tmp_path_factory.mktemp("trl")),
        report_to=[],
        beta=0.1,
        precompute_ref_log_probs=True,
        use_cpu=True,
    )
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    return DPOTrainer(
        model=model,
        args=args,
        train_dataset=HFDataset.from_list(rows),
        processing_class=build_tokenizer(),
    )


def test_the_loss_on_fixed_log_probs_is_trls(trl_trainer):
    """Per-token log-probs and reference sums fixed by hand. TRL's model returns the log-prob
    of each labelled token (completion mask shifted by one: position 0 is never predicted) and
    0 elsewhere, as our labels do."""
    from types import SimpleNamespace

    import torch

    chosen_rows = [[-0.1, -1.0, -2.0, -0.5], [-0.7, -0.2, -3.1, 0.0], [-0.3, -3.0, -1.0, -0.25]]
    rejected_rows = [[-0.9, -0.4, -0.6, -1.5], [-0.2, -0.1, -0.8, -2.2], [-1.1, -4.0, -0.05, 0]]
    log_probs = torch.tensor([*chosen_rows, *rejected_rows])
    completion = torch.tensor([[0, 0, 1, 1, 1], [0, 1, 1, 1, 0], [0, 0, 0, 1, 1]] * 2)
    reference_chosen = torch.tensor([-2.0, -1.5, -6.0])
    reference_rejected = torch.tensor([-4.5, -1.0, -0.5])

    labelled = log_probs * completion[:, 1:]

    def fixed_model(**_):
        zeros = torch.zeros(log_probs.shape)
        return SimpleNamespace(
            log_probs=labelled, entropy=zeros, mean_logits=zeros, is_top1=zeros.bool()
        )

    inputs = {
        "input_ids": torch.ones(6, 5, dtype=torch.long),
        "attention_mask": torch.ones(6, 5, dtype=torch.long),
        "completion_mask": completion,
        "ref_chosen_logps": reference_chosen,
        "ref_rejected_logps": reference_rejected,
    }
    expected = trl_trainer._compute_loss(fixed_model, inputs, False).item()

    sums = labelled.sum(dim=1)
    losses, margins = dpo_losses(sums[:3], sums[3:], reference_chosen, reference_rejected, 0.1)
    assert losses.mean().item() == pytest.approx(expected, rel=1e-6)
    # By hand, the first pair: beta × ((-3.5 + 2) - (-2.5 + 4.5)).
    assert margins[0].item() == pytest.approx(0.1 * (-1.5 - 2.0))


def test_the_loss_on_a_tiny_models_batch_is_trls(trl_trainer, tiny_model_dir, tokenizer):
    """Our tokenised pairs, scored by our log-probabilities (also through the chunked output
    layer) and loss, against TRL's loss on the same tensors and model."""
    import torch
    from transformers import AutoModelForCausalLM

    from trainer.engine.modeling import OutputHead
    from trainer.engine.weights import output_layer_passthrough

    pairs = tokenize_pairs(tokenizer, PAIRS, 64, "toy").examples
    batch = collate_pairs(pairs, tokenizer.pad_token_id)
    completion = (batch["labels"] != -100).long()
    # A reference other than the policy, so the loss is not log 2 everywhere.
    reference = torch.linspace(-9.0, -2.0, 2 * len(pairs))
    inputs = {
        "input_ids": batch["input_ids"],
        "attention_mask": batch["attention_mask"],
        "completion_mask": completion,
        "ref_chosen_logps": reference[: len(pairs)],
        "ref_rejected_logps": reference[len(pairs) :],
    }
    trl_trainer.model.eval()
    with torch.no_grad():
        expected = trl_trainer._compute_loss(trl_trainer.model, inputs, False).item()

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval().requires_grad_(False)
    with torch.no_grad():
        plain = sequence_logps(model, batch, "cpu")
        output_layer_passthrough(model.get_output_embeddings())
        head = OutputHead(weight=model.get_output_embeddings().weight, chunk_tokens=3)
        chunked = sequence_logps(model, batch, "cpu", head)
    assert torch.allclose(plain, chunked, atol=1e-5)
    n = len(pairs)
    losses, _ = dpo_losses(plain[:n], plain[n:], reference[:n], reference[n:], 0.1)
    assert losses.mean().item() == pytest.approx(expected, rel=1e-5)


@pytest.fixture(scope="module")
def sft_adapter(tiny_model_dir, tmp_path_factory):
    output = tmp_path_factory.mktemp("sft")
    config = TrainConfig(rank=4, learning_rate=0.05, batch_size=5, max_steps=6, dropout=0.0)
    train(
        model_dir=tiny_model_dir,
        config=config,
        train_conversations=SFT_DATA,
        validation_conversations=[],
        output_dir=output,
    )
    return output / ADAPTER_DIR


def dpo_config(**changes):
    settings = dict(rank=4, batch_size=5, epochs=6, dropout=0.0, warmup_ratio=0)
    return TrainConfig.for_method(
        "dpo", **{"learning_rate": 0.02, "beta": 0.5, **settings, **changes}
    )


@pytest.fixture(scope="module")
def dpo_run(tiny_model_dir, sft_adapter, tmp_path_factory):
    hooks = RecordingHooks()
    result = train(
        model_dir=tiny_model_dir,
        config=dpo_config(patience=0),
        train_conversations=REFUSALS,
        validation_conversations=REFUSALS,
        output_dir=tmp_path_factory.mktemp("dpo"),
        hooks=hooks,
        start_adapter=sft_adapter,
    )
    return result, hooks


def test_a_dpo_run_starts_at_log_2_its_policy_being_its_reference(dpo_run):
    _, hooks = dpo_run
    assert hooks.steps[0].train_loss == pytest.approx(math.log(2), abs=1e-5)
    assert hooks.steps[0].reward_margin == pytest.approx(0.0, abs=1e-5)


def test_a_dpo_run_turns_its_pairs_around_and_records_reward_curves(dpo_run):
    result, hooks = dpo_run
    assert result.stop_reason == "completed"
    assert hooks.steps[-1].train_loss < 0.5 * math.log(2)
    assert all(p.reward_accuracy is not None for p in hooks.steps)
    evaluations = hooks.evaluations  # one a step: every step ends an epoch of 5 pairs
    assert [e.step for e in evaluations] == list(range(1, result.final_step + 1))
    assert all(e.reward_accuracy is not None for e in evaluations)
    assert evaluations[-1].reward_accuracy == 1.0
    assert evaluations[-1].reward_margin > evaluations[0].reward_margin > 0
    assert evaluations[-1].val_loss < evaluations[0].val_loss


def test_a_resumed_dpo_run_keeps_its_reference_and_ends_where_an_uninterrupted_one_does(
    tiny_model_dir, sft_adapter, tmp_path
):
    """The resumed run measures against the starting adapter again, not against the weights
    of its checkpoint."""
    from trainer.engine.checkpoint import CHECKPOINT_DIR

    def run(output, stop_after=None, resume_from=None):
        hooks = RecordingHooks(stop_after=stop_after)
        train(
            model_dir=tiny_model_dir,
            config=dpo_config(epochs=4, patience=0),
            train_conversations=REFUSALS,
            validation_conversations=REFUSALS,
            output_dir=output,
            hooks=hooks,
            start_adapter=sft_adapter,
            resume_from=resume_from,
        )
        return hooks

    whole = run(tmp_path / "whole")
    stopped = run(tmp_path / "stopped", stop_after=2)
    resumed = run(tmp_path / "resumed", resume_from=tmp_path / "stopped" / CHECKPOINT_DIR)
    assert [p.step for p in stopped.steps] == [1, 2] and [p.step for p in resumed.steps] == [3, 4]
    for done, again in zip(whole.steps[2:], resumed.steps, strict=True):
        assert again.train_loss == pytest.approx(done.train_loss, abs=1e-5)
        assert again.reward_margin == pytest.approx(done.reward_margin, abs=1e-5)


def test_the_reference_is_the_starting_adapter_not_the_base(tiny_model_dir, sft_adapter, tmp_path):
    """The reference log-probs match the SFT adapter loaded apart by peft, and differ from the
    base model's."""
    import torch

    from trainer.engine.hooks import TrainHooks
    from trainer.engine.setup import set_up

    session = set_up(
        model_dir=tiny_model_dir,
        config=dpo_config(),
        train_conversations=PAIRS,
        validation_conversations=[],
        output_dir=tmp_path,
        hooks=TrainHooks(),
        resume_from=None,
        adapter_metadata={},
        start_adapter=sft_adapter,
    )
    model = load_nf4_with_adapter(tiny_model_dir, sft_adapter)
    batch = collate_pairs(session.train_split.examples, session.pad_id)
    with torch.no_grad():
        with_adapter = sequence_logps(model, batch, "cpu")
        with model.disable_adapter():
            without = sequence_logps(model, batch, "cpu")
    n = len(PAIRS)
    found = torch.cat([session.train_reference[:, 0], session.train_reference[:, 1]])
    assert torch.allclose(found, with_adapter, atol=1e-4)
    assert not torch.allclose(found, without, atol=1e-2)
    assert found.shape == (2 * n,)


def test_dpo_without_an_adapter_to_start_from_is_refused(tiny_model_dir, tmp_path):
    with pytest.raises(TrainingError, match="DPO improves an adapter") as caught:
        train(
            model_dir=tiny_model_dir,
            config=dpo_config(),
            train_conversations=PAIRS,
            validation_conversations=[],
            output_dir=tmp_path,
        )
    assert str(caught.value) == DPO_NEEDS_ADAPTER
