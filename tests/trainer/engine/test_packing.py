"""Packed rows against the same examples one by one, on the tiny NF4 Llama the engine trains
(float32 compute on CPU, the per-example attention path)."""

import random

import pytest
import torch
import torch.nn.functional as F

from trainer.engine.activations import LAYER_MODES, apply_layer_modes, decoder_layers
from trainer.engine.config import PACKING_NEEDS_SFT, ConfigError, TrainConfig
from trainer.engine.data import IGNORE_INDEX, TokenizedExample, collate
from trainer.engine.hooks import RecordingHooks
from trainer.engine.loop import train
from trainer.engine.modeling import load_qlora_model, prepare_for_training
from trainer.engine.packed_attention import VarlenKernel, kernel_agrees, packing_enabled
from trainer.engine.packing import (
    EXAMPLE_TOO_LONG,
    collate_packed,
    pack_examples,
    packed_batches,
)
from trainer.engine.steps import assistant_loss, forward, label_count
from trainer.engine.toy import COLOURS, colour_conversation

# float32 on CPU: the packed row and the single examples run the same operations on the same
# numbers, but matrix products over a different number of rows may sum in another order.
LOSS_RTOL = 1e-5
GRAD_RTOL, GRAD_ATOL = 1e-4, 1e-5  # gradients here reach ~4; measured gap 1e-6
OUTPUT_ATOL = 1e-6
PAD_ID = 1


def example(length, answer, *, seed):
    """A tokenised example: random ids, labels on the token positions in ``answer``."""
    ids = random.Random(seed).choices(range(4, 40), k=length)
    labels = [ids[i] if i in answer else IGNORE_INDEX for i in range(length)]
    return TokenizedExample(input_ids=ids, labels=labels, truncated=False)


# Different lengths and assistant spans: the last 60 %, the whole example after one token,
# two turns, and a span that starts at position 0 (its first token never a target).
EXAMPLES = [
    example(15, range(6, 15), seed=1),
    example(7, range(1, 7), seed=2),
    example(23, [*range(5, 9), *range(16, 23)], seed=3),
    example(11, range(0, 5), seed=4),
]


@pytest.fixture(scope="module")
def engine_model(tiny_model_dir):
    """The model as finetune trains it with packing: NF4 base, LoRA (B random so that every
    LoRA weight gets a gradient), fused kernels, chunked loss, packed attention; every decoder
    layer in ``layer_mode`` (keep, recompute, offload or stream)."""

    def build(layer_mode="keep"):
        config = TrainConfig(rank=4, dropout=0.0)
        model = load_qlora_model(tiny_model_dir, config, "cpu")
        torch.manual_seed(3)
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(parameter, std=0.2)
        _, head = prepare_for_training(
            model, config, "cpu", tokens=4 * 23, world_size=1, packing=True
        )
        layers = decoder_layers(model)
        apply_layer_modes(layers, [layer_mode] * len(layers), "cpu")
        return model, head

    return build


def loss_and_grads(model, head, batches):
    model.zero_grad(set_to_none=True)
    loss = sum(assistant_loss(model, batch, "cpu", head) for batch in batches)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.item(), grads


@pytest.mark.parametrize("layer_mode", LAYER_MODES)
def test_a_packed_row_gives_the_loss_and_lora_gradients_of_its_examples_one_by_one(
    engine_model, layer_mode
):
    model, head = engine_model(layer_mode)
    assert head is not None  # the chunked loss is on the path
    packed_loss, packed_grads = loss_and_grads(model, head, [collate_packed(EXAMPLES)])
    single_loss, single_grads = loss_and_grads(
        model, head, [collate([e], PAD_ID) for e in EXAMPLES]
    )
    assert packed_loss == pytest.approx(single_loss, rel=LOSS_RTOL)
    assert len(packed_grads) == 2 * 7 * 2  # A and B of 7 linear layers in each of 2 blocks
    for name, grad in packed_grads.items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(grad, single_grads[name], rtol=GRAD_RTOL, atol=GRAD_ATOL)


def test_a_packed_row_counts_the_assistant_tokens_of_its_examples():
    singles = sum(label_count(collate([e], PAD_ID)) for e in EXAMPLES)
    assert label_count(collate_packed(EXAMPLES)) == singles == 9 + 6 + 11 + 4


def test_positions_restart_at_zero_for_every_example_of_a_row():
    row = collate_packed(EXAMPLES)
    assert row["position_ids"].tolist() == [[*range(15), *range(7), *range(23), *range(11)]]
    assert row["cu_seq_lens"].tolist() == [0, 15, 22, 45, 56]
    assert row["max_length"] == 23
    # The first token of each example is no target: the previous example's last token would
    # otherwise learn to predict it.
    starts = row["labels"][0, [0, 15, 22, 45]].tolist()
    assert starts == [IGNORE_INDEX] * 4


def test_a_token_never_sees_another_example_of_its_row(engine_model):
    model, head = engine_model()
    changed = [example(15, range(6, 15), seed=99), *EXAMPLES[1:]]
    assert changed[0].input_ids != EXAMPLES[0].input_ids
    with torch.no_grad():
        # The model returns final hidden states; the chunked loss applies the output layer.
        before = forward(model, collate_packed(EXAMPLES), "cpu")[1] @ head.weight.T
        after = forward(model, collate_packed(changed), "cpu")[1] @ head.weight.T
    assert (before[0, :15] - after[0, :15]).abs().max() > 1e-3  # example 1 did change
    torch.testing.assert_close(after[0, 15:], before[0, 15:], rtol=0, atol=OUTPUT_ATOL)


def test_a_padded_batch_still_attends_as_before_on_a_packing_model(engine_model):
    """Validation runs padded batches through the same model: padding stays masked."""
    model, _ = engine_model()
    with torch.no_grad():
        _, padded = forward(model, collate(EXAMPLES[:2], PAD_ID), "cpu")
        _, alone = forward(model, collate(EXAMPLES[1:2], PAD_ID), "cpu")
    torch.testing.assert_close(padded[1, :7], alone[0], rtol=0, atol=OUTPUT_ATOL)


def test_rows_hold_every_example_once_within_the_budget():
    lengths = [random.Random(i).randint(1, 300) for i in range(500)]
    rows = pack_examples(lengths, 1200, seed=5)
    assert sorted(i for row in rows for i in row) == list(range(500))
    assert max(sum(lengths[i] for i in row) for row in rows) <= 1200
    # Best fit leaves fewer rows than one past the tokens' lower bound would allow.
    assert len(rows) <= sum(lengths) // 1200 + 2


def test_every_epoch_has_the_same_rows_in_its_own_order():
    lengths = [random.Random(i).randint(1, 90) for i in range(200)]
    first = packed_batches(lengths, 400, seed=3, epoch=0)
    second = packed_batches(lengths, 400, seed=3, epoch=1)
    assert first != second
    assert sorted(map(sorted, first)) == sorted(map(sorted, second))
    assert packed_batches(lengths, 400, seed=3, epoch=1) == second  # a resumed run replays it


def test_an_example_longer_than_a_row_is_refused():
    with pytest.raises(ValueError) as error:
        pack_examples([10, 50], 40, seed=0)
    assert str(error.value) == EXAMPLE_TOO_LONG.format(length=50, budget=40)


@pytest.mark.parametrize(
    ("settings", "packs"),
    [
        ({}, False),  # auto: no variable-length attention on a CPU
        ({"packing": "on"}, True),
        ({"packing": "off"}, False),
        ({"method": "dpo"}, False),
    ],
)
def test_auto_packing_stays_off_on_a_cpu(settings, packs):
    assert packing_enabled(TrainConfig(**settings), "cpu") is packs


def test_packing_dpo_is_refused():
    with pytest.raises(ConfigError, match=PACKING_NEEDS_SFT):
        TrainConfig(method="dpo", packing="on")


def long_conversation(thing):
    """A colour question with a longer prompt: 31 tokens against the short ones' 18."""
    messages = colour_conversation(thing)
    messages[1]["content"] += (
        " please answer briefly one two three four five six seven eight nine ten"
    )
    return messages


def test_a_packed_run_trains_in_fewer_steps_and_says_it_packed(tiny_model_dir, tmp_path):
    """The whole loop with packing on: rows of up to 2 × the longest example, padded
    validation through the same model, and the run's plan saying how it packed."""
    conversations = [colour_conversation(thing) for thing in COLOURS]
    conversations += [colour_conversation(thing) for thing in ("sky", "sun", "snow")]
    conversations += [long_conversation("grass"), long_conversation("snow")]
    starts = {}
    for packing in ("off", "on"):
        hooks = RecordingHooks()
        config = TrainConfig(rank=4, batch_size=2, epochs=1, packing=packing)
        result = train(
            model_dir=tiny_model_dir,
            config=config,
            train_conversations=conversations,
            validation_conversations=conversations[:2],
            output_dir=tmp_path / packing,
            hooks=hooks,
        )
        assert result.stop_reason == "completed" and result.best_val_loss is not None
        starts[packing] = hooks.start
    # Padded: 5 batches of 2. Packed into rows of 62 tokens: each long example with one short
    # one (49 tokens), the six other short ones three to a row (54): 4 rows.
    assert (starts["off"].steps_per_epoch, starts["off"].packing) == (5, "off")
    assert starts["on"].steps_per_epoch == 4 and starts["on"].padding_share == 0.0
    assert starts["on"].packing == (
        "on (per-example attention): 4 rows of up to 62 tokens per epoch, 2.5 examples and "
        "83% full on average"
    )


def _segment_attention(query, key, value, bounds, *_lengths, window_size, **_options):
    """A variable-length kernel in torch's layout (tokens, heads, dim), one example at a time:
    what the check must accept."""
    groups = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1)
    pieces = []
    for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        q, k, v = (t[start:end].transpose(0, 1) for t in (query, key, value))
        pieces.append(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(0, 1))
    return torch.cat(pieces)


def _whole_row_attention(query, key, value, *_args, window_size, **_options):
    """Causal over the whole row: the second example sees the first, what the check refuses."""
    groups = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1)
    q, k, v = (t.transpose(0, 1) for t in (query, key, value))
    return F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(0, 1)


def _old_signature(query, key, value, bounds, *_args, is_causal):
    raise AssertionError("not reached: the call passes window_size")


@pytest.mark.parametrize(
    ("function", "agrees"),
    [(_segment_attention, True), (_whole_row_attention, False), (_old_signature, False)],
)
def test_packing_trusts_a_varlen_kernel_only_after_it_matched_sdpa(function, agrees):
    """Before --packing auto relies on torch's kernel, it runs it on a two-example row against
    SDPA example by example; a kernel that leaks across examples or takes other arguments
    turns auto off with a warning instead of failing the run's first step."""
    kernel = VarlenKernel(
        function=function, causal={"window_size": (-1, 0)}, takes_scale=False, takes_gqa=False
    )
    if agrees:
        assert kernel_agrees(kernel, "cpu", torch.float32)
    else:
        with pytest.warns(RuntimeWarning, match="--packing auto stays off"):
            assert not kernel_agrees(kernel, "cpu", torch.float32)
