"""From chat conversations to training batches.

Each conversation is rendered with the base model's own chat template and tokenised once; the
labels keep only the tokens of assistant turns (everything else is -100, so the loss never
teaches the model to write the user's side). Batches group examples of similar length, one
example per row: no padding waste to speak of, and no attention across examples.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

IGNORE_INDEX = -100
# Examples are sorted by length inside windows of this many batches: neighbours have similar
# lengths (little padding) while the epoch order stays shuffled.
GROUPING_WINDOW_BATCHES = 64

NO_CHAT_TEMPLATE = (
    "the tokenizer of {model} has no chat template; an instruction-tuned base model (or a "
    "tokenizer with a chat_template) is needed so that training and generation format alike"
)
TEMPLATE_NOT_PREFIX_STABLE = (
    "the chat template of {model} renders the start of a conversation differently from the "
    "whole conversation (message {index}); assistant tokens cannot be located for loss masking"
)
NO_FAST_TOKENIZER = "the tokenizer of {model} has no fast (Rust) version; offsets are needed"
BAD_BATCH_SIZE = "batch size must be at least 1, got {value}"

Message = dict[str, str]


class DataError(ValueError):
    """The tokenizer or the data cannot be used as they are."""


@dataclass(frozen=True)
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]  # same length; IGNORE_INDEX outside assistant turns
    truncated: bool

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass(frozen=True)
class PreferencePair:
    """One prompt answered twice: each side is the whole conversation, the prompt's messages
    then its final assistant answer."""

    chosen: list[Message]
    rejected: list[Message]


@dataclass(frozen=True)
class TokenizedPair:
    """Both sides of a pair, labelled on their final answer only."""

    chosen: TokenizedExample
    rejected: TokenizedExample

    @property
    def truncated(self) -> bool:
        return self.chosen.truncated or self.rejected.truncated

    def __len__(self) -> int:
        return max(len(self.chosen), len(self.rejected))


@dataclass(frozen=True)
class TokenizedSplit:
    examples: list[TokenizedExample] | list[TokenizedPair]
    truncated: int  # cut to max_seq_len, still trained on
    dropped: int  # no assistant token left (none in the conversation, or all cut off)

    @property
    def lengths(self) -> list[int]:
        return [len(e) for e in self.examples]


def check_tokenizer(tokenizer: Any, model: str) -> None:
    if not getattr(tokenizer, "chat_template", None):
        raise DataError(NO_CHAT_TEMPLATE.format(model=model))
    if not getattr(tokenizer, "is_fast", False):
        raise DataError(NO_FAST_TOKENIZER.format(model=model))


def assistant_spans(tokenizer: Any, messages: Sequence[Message], model: str) -> list[range]:
    """Character ranges of the rendered conversation that the model must learn to write.

    Each assistant turn runs from the end of the prompt rendered with the generation prompt (the
    text generation will start from) to the end of the conversation rendered through that turn,
    so it includes the template's end-of-turn marker: the model learns to stop.
    """
    render = tokenizer.apply_chat_template
    full = render(list(messages), tokenize=False)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = render(list(messages[:index]), tokenize=False, add_generation_prompt=True)
        through = render(list(messages[: index + 1]), tokenize=False)
        if not (through.startswith(prompt) and full.startswith(through)):
            raise DataError(TEMPLATE_NOT_PREFIX_STABLE.format(model=model, index=index))
        spans.append(range(len(prompt), len(through)))
    return spans


def tokenize_conversation(
    tokenizer: Any,
    messages: Sequence[Message],
    max_seq_len: int,
    *,
    model: str = "the model",
    last_turn_only: bool = False,
) -> TokenizedExample | None:
    """Token ids and assistant-only labels; None when no assistant token would be trained on.
    ``last_turn_only`` labels only the final assistant turn: the answer a preference is about."""
    spans = assistant_spans(tokenizer, messages, model)
    if last_turn_only:
        spans = spans[-1:]
    if not spans:
        return None
    text = tokenizer.apply_chat_template(list(messages), tokenize=False)
    # The template already writes any BOS token; adding special tokens again would double it.
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    input_ids = list(encoded["input_ids"])
    labels = [
        token if _overlaps(offsets, spans) else IGNORE_INDEX
        for token, offsets in zip(input_ids, encoded["offset_mapping"], strict=True)
    ]
    truncated = len(input_ids) > max_seq_len
    input_ids, labels = input_ids[:max_seq_len], labels[:max_seq_len]
    # Position 0 is never predicted (nothing precedes it), so it does not count as trained.
    if all(label == IGNORE_INDEX for label in labels[1:]):
        return None
    return TokenizedExample(input_ids=input_ids, labels=labels, truncated=truncated)


def _overlaps(offsets: Sequence[int], spans: Sequence[range]) -> bool:
    start, end = offsets
    # A token that straddles the prompt/answer boundary carries answer text: train on it.
    return any(start < span.stop and end > span.start for span in spans)


def tokenize_split(
    tokenizer: Any, conversations: Sequence[Sequence[Message]], max_seq_len: int, model: str
) -> TokenizedSplit:
    examples, truncated, dropped = [], 0, 0
    for messages in conversations:
        example = tokenize_conversation(tokenizer, messages, max_seq_len, model=model)
        if example is None:
            dropped += 1
            continue
        truncated += example.truncated
        examples.append(example)
    return TokenizedSplit(examples=examples, truncated=truncated, dropped=dropped)


def tokenize_pairs(
    tokenizer: Any, pairs: Sequence[PreferencePair], max_seq_len: int, model: str
) -> TokenizedSplit:
    """A pair is dropped when either side has no answer token left after the cut."""
    examples, truncated, dropped = [], 0, 0
    for pair in pairs:
        sides = [
            tokenize_conversation(tokenizer, side, max_seq_len, model=model, last_turn_only=True)
            for side in (pair.chosen, pair.rejected)
        ]
        if sides[0] is None or sides[1] is None:
            dropped += 1
            continue
        tokenized = TokenizedPair(chosen=sides[0], rejected=sides[1])
        truncated += tokenized.truncated
        examples.append(tokenized)
    return TokenizedSplit(examples=examples, truncated=truncated, dropped=dropped)


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, *, seed: int, epoch: int
) -> list[list[int]]:
    """Indices of each batch for one epoch, in training order.

    The order depends only on (seed, epoch), never on a global random state, so a resumed run
    replays exactly the batches the interrupted one would have seen.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * GROUPING_WINDOW_BATCHES
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i], reverse=True)
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, for validation and generation: longest
    first, so a batch that does not fit in memory fails at once, not at the end."""
    if batch_size < 1:
        raise ValueError(BAD_BATCH_SIZE.format(value=batch_size))
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def shard(batches: list[list[int]], rank: int, world_size: int) -> list[list[int]]:
    """This process's share. Every process gets as many batches (the list wraps around), so no
    process waits for a gradient exchange the others will never start."""
    if world_size == 1 or not batches:
        return batches
    padded = batches + batches[: (-len(batches)) % world_size]
    return padded[rank::world_size]


def padding_share(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Share of padded positions over all batches (0 = no waste)."""
    padded = sum(max(lengths[i] for i in batch) * len(batch) for batch in batches)
    real = sum(lengths[i] for batch in batches for i in batch)
    return 1 - real / padded if padded else 0.0


def collate(examples: Sequence[TokenizedExample], pad_id: int) -> dict[str, Any]:
    """Right-padded tensors; padded positions are masked out of attention and of the loss."""
    import torch

    width = max(len(e) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example)
        input_ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        attention_mask[row, :n] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


def collate_pairs(pairs: Sequence[TokenizedPair], pad_id: int) -> dict[str, Any]:
    """One batch of 2 × len(pairs) rows: every chosen side, then every rejected side, so one
    forward serves both (row i and row len(pairs) + i are a pair)."""
    return collate([p.chosen for p in pairs] + [p.rejected for p in pairs], pad_id)
