import random

import pytest

from trainer.engine.data import (
    IGNORE_INDEX,
    NO_CHAT_TEMPLATE,
    TEMPLATE_NOT_PREFIX_STABLE,
    DataError,
    TokenizedExample,
    check_tokenizer,
    collate,
    length_grouped_batches,
    padding_share,
    shard,
    sorted_batches,
    tokenize_conversation,
    tokenize_split,
)
from trainer.engine.toy import CHAT_TEMPLATE, colour_conversation

TWO_TURNS = [
    {"role": "system", "content": "you are helpful"},
    {"role": "user", "content": "what colour is the sky"},
    {"role": "assistant", "content": "blue"},
    {"role": "user", "content": "say red"},
    {"role": "assistant", "content": "red"},
]


def trained_tokens(tokenizer, example):
    return [
        (position, tokenizer.convert_ids_to_tokens(label))
        for position, label in enumerate(example.labels)
        if label != IGNORE_INDEX
    ]


def test_loss_is_only_on_assistant_tokens_and_their_end_of_turn(tokenizer):
    example = tokenize_conversation(tokenizer, TWO_TURNS, 128)
    tokens = tokenizer.convert_ids_to_tokens(example.input_ids)
    assert tokens[14:18] == ["<|im_start|>", "assistant", "blue", "<|im_end|>"]
    # "red" in the user's turn (position 21) is not trained on; the assistant's "red" is.
    assert tokens[21] == "red"
    assert trained_tokens(tokenizer, example) == [
        (16, "blue"),
        (17, "<|im_end|>"),
        (25, "red"),
        (26, "<|im_end|>"),
    ]
    assert example.labels == [
        token if position in (16, 17, 25, 26) else IGNORE_INDEX
        for position, token in enumerate(example.input_ids)
    ]


def test_a_conversation_cut_to_max_seq_len_keeps_what_fits(tokenizer):
    example = tokenize_conversation(tokenizer, TWO_TURNS, 20)
    assert example.truncated and len(example) == 20
    assert trained_tokens(tokenizer, example) == [(16, "blue"), (17, "<|im_end|>")]


def test_conversations_with_nothing_to_learn_are_dropped(tokenizer):
    no_answer = TWO_TURNS[:2]
    assert tokenize_conversation(tokenizer, no_answer, 128) is None
    assert tokenize_conversation(tokenizer, TWO_TURNS, 12) is None  # answer cut off
    split = tokenize_split(tokenizer, [TWO_TURNS, no_answer, TWO_TURNS], 20, "tiny")
    assert (len(split.examples), split.truncated, split.dropped) == (2, 2, 1)


def test_a_tokenizer_without_chat_template_is_refused(tokenizer):
    bare = tokenizer.__class__(tokenizer_object=tokenizer.backend_tokenizer)
    with pytest.raises(DataError) as error:
        check_tokenizer(bare, "tiny")
    assert str(error.value) == NO_CHAT_TEMPLATE.format(model="tiny")


def test_a_template_that_rewrites_earlier_turns_is_refused(tokenizer):
    # Renders the generation prompt differently from a finished assistant turn.
    unstable = tokenizer.__class__(tokenizer_object=tokenizer.backend_tokenizer)
    unstable.chat_template = CHAT_TEMPLATE.replace(
        "<|im_start|>assistant\n{% endif %}", "<|im_start|>bot\n{% endif %}"
    )
    with pytest.raises(DataError) as error:
        tokenize_conversation(unstable, TWO_TURNS, 128, model="tiny")
    assert str(error.value) == TEMPLATE_NOT_PREFIX_STABLE.format(model="tiny", index=2)


def test_every_example_is_in_exactly_one_batch_per_epoch_in_a_seeded_order():
    lengths = [random.Random(i).randint(5, 300) for i in range(1000)]
    epoch0 = length_grouped_batches(lengths, 8, seed=1, epoch=0)
    assert sorted(i for batch in epoch0 for i in batch) == list(range(1000))
    assert epoch0 == length_grouped_batches(lengths, 8, seed=1, epoch=0)
    assert epoch0 != length_grouped_batches(lengths, 8, seed=1, epoch=1)
    assert epoch0 != length_grouped_batches(lengths, 8, seed=2, epoch=0)


def test_length_grouping_leaves_little_padding():
    lengths = list(range(1, 65))
    random.Random(0).shuffle(lengths)
    batches = length_grouped_batches(lengths, 8, seed=0, epoch=0)
    # All 64 fit one window: sorted into runs of 8 consecutive lengths, each wasting
    # 0+1+...+7 = 28 positions; padded total 8 × (64+56+...+8) = 2304.
    assert padding_share(lengths, batches) == pytest.approx(8 * 28 / 2304)
    shuffled = list(range(64))
    random.Random(0).shuffle(shuffled)
    unsorted = [shuffled[i : i + 8] for i in range(0, 64, 8)]
    assert padding_share(lengths, unsorted) > 3 * padding_share(lengths, batches)


def test_sorted_batches_group_similar_lengths_longest_first():
    assert sorted_batches([3, 9, 1, 7, 5], 2) == [[1, 3], [4, 0], [2]]


def test_sorted_batches_need_a_positive_batch_size():
    with pytest.raises(ValueError, match="batch size"):
        sorted_batches([1, 2], 0)


def test_shards_are_equal_so_no_process_waits_for_the_others():
    batches = [[i] for i in range(5)]
    shards = [shard(batches, rank, 2) for rank in range(2)]
    assert shards == [[[0], [2], [4]], [[1], [3], [0]]]


def test_collate_pads_on_the_right_outside_attention_and_loss():
    examples = [
        TokenizedExample(input_ids=[5, 6, 7], labels=[-100, 6, 7], truncated=False),
        TokenizedExample(input_ids=[8], labels=[8], truncated=False),
    ]
    batch = collate(examples, pad_id=1)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 1, 1]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_examples_in_one_batch_do_not_attend_to_each_other(tiny_model_dir, tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    from trainer.engine.steps import assistant_loss

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    short = tokenize_conversation(tokenizer, colour_conversation("sky"), 128)
    long = tokenize_conversation(tokenizer, TWO_TURNS, 128)
    with torch.no_grad():
        alone = [assistant_loss(model, collate([e], 1), "cpu").item() for e in (short, long)]
        together = collate([long, short], tokenizer.pad_token_id)
        logits = model(
            input_ids=together["input_ids"], attention_mask=together["attention_mask"]
        ).logits
        short_alone = model(input_ids=torch.tensor([short.input_ids])).logits
        batched = assistant_loss(model, together, "cpu").item()
    assert torch.allclose(logits[1, : len(short)], short_alone[0], atol=1e-5)
    assert batched == pytest.approx(sum(alone), rel=1e-5)
