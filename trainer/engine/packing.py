"""Padding-free packing: whole training examples back to back in one row of tokens.

A packed micro-batch is a single row: no padding at all, however the lengths mix. Each example
in it keeps its own positions (0, 1, 2, ... from its first token), attends only to itself
(``engine/packed_attention.py``, given the row's example boundaries ``cu_seq_lens``), and
trains on its assistant tokens as it would alone. Its first token is never a target: in a
padded batch nothing precedes it, and in a row the previous example's last token must not
learn to predict it.

A row holds up to ``token_budget`` tokens: ``batch_size`` × the longest example's tokens, the
most a padded micro-batch of the same run can hold, so the memory plan made for that holds for
every row. A padded batch of short examples reaches a small part of that; a row reaches it
nearly always, so each step carries more real tokens (and an epoch has fewer steps).

Examples are placed by best-fit decreasing once per run (the fewest rows, nearly full): the
rows keep their examples from epoch to epoch, and the order of the rows is shuffled per epoch
from (seed, epoch) alone, so a resumed run replays the rows the interrupted one would have
seen, and every epoch has the same number of steps.
"""

from __future__ import annotations

import random
from bisect import bisect_left, insort
from collections.abc import Sequence
from typing import Any

from trainer.engine.data import IGNORE_INDEX, TokenizedExample

EXAMPLE_TOO_LONG = "an example of {length} tokens does not fit in a row of {budget}"


def token_budget(batch_size: int, lengths: Sequence[int]) -> int:
    """Tokens per packed row: what the run's largest padded micro-batch would hold."""
    return batch_size * max(lengths)


def pack_examples(lengths: Sequence[int], budget: int, *, seed: int) -> list[list[int]]:
    """Example indices grouped into rows of at most ``budget`` tokens: longest first, each
    into the row it fills most tightly (best fit). Equal lengths are taken in an order seeded
    by ``seed``, so which of them share a row does not follow the dataset's order."""
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    order.sort(key=lambda i: lengths[i], reverse=True)  # stable: ties keep the shuffle
    rows: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (tokens left, row), ascending
    for index in order:
        length = lengths[index]
        if length > budget:
            raise ValueError(EXAMPLE_TOO_LONG.format(length=length, budget=budget))
        slot = bisect_left(free, (length, -1))
        if slot == len(free):
            rows.append([])
            row, left = len(rows) - 1, budget
        else:
            left, row = free.pop(slot)
        rows[row].append(index)
        if left > length:
            insort(free, (left - length, row))
    return rows


def packed_batches(
    lengths: Sequence[int], budget: int, *, seed: int, epoch: int
) -> list[list[int]]:
    """The rows (example indices) of one epoch, in training order."""
    rows = pack_examples(lengths, budget, seed=seed)
    random.Random(seed * 1_000_003 + epoch).shuffle(rows)
    return rows


def collate_packed(examples: Sequence[TokenizedExample]) -> dict[str, Any]:
    """One row of ``examples`` back to back: input ids, labels, each token's position within
    its example, and the examples' boundaries (``cu_seq_lens``: 0, then the cumulative
    lengths) with the longest length, as variable-length attention takes them."""
    import torch

    input_ids, labels, positions, bounds = [], [], [], [0]
    for example in examples:
        input_ids += example.input_ids
        labels += [IGNORE_INDEX, *example.labels[1:]]
        positions += range(len(example))
        bounds.append(bounds[-1] + len(example))
    return {
        "input_ids": torch.tensor([input_ids]),
        "labels": torch.tensor([labels]),
        "position_ids": torch.tensor([positions]),
        "cu_seq_lens": torch.tensor(bounds, dtype=torch.int32),
        "max_length": max(len(example) for example in examples),
    }


def describe_packing(lengths: Sequence[int], budget: int, *, seed: int, attention: str) -> str:
    """One line for the run's plan: the rows of an epoch, how full, and how they attend."""
    rows = pack_examples(lengths, budget, seed=seed)
    fill = sum(lengths) / (len(rows) * budget)
    return (
        f"on ({attention} attention): {len(rows)} rows of up to {budget:,} tokens per epoch, "
        f"{len(lengths) / len(rows):.1f} examples and {fill:.0%} full on average"
    )
