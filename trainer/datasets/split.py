"""The seeded train / validation / feedback / test split.

train and validation feed training; feedback prompts go to studies whose judgments may train
the next adapter (a preference set); test prompts go to studies that decide, and never train.

Examples are split in groups, never one by one: a group holds every example that shares a
content hash, a normalised text, a prompt or a near-duplicate cluster with another (the caller
builds the groups). A whole group lands on one side, so the held-out splits cannot contain a
copy of a training example: the test split is held out by construction.

The result depends only on the examples' content, the ratios and the seed, not on file order:
groups are ordered by their smallest content hash before the seeded shuffle.
"""

import math
import random
from collections.abc import Sequence

from trainer.datasets.errors import InvalidSplit

TRAIN, VALIDATION, FEEDBACK, TEST = "train", "validation", "feedback", "test"
SPLITS = (TRAIN, VALIDATION, FEEDBACK, TEST)
# The held-out splits in the order they are filled: test first, so it is never short.
HELD_OUT = (TEST, FEEDBACK, VALIDATION)
DEFAULT_RATIOS = (0.8, 0.1, 0.0, 0.1)
Ratios = tuple[float, float, float, float]

RATIOS_FORMAT = (
    "split ratios must be three numbers train,validation,test such as 0.8,0.1,0.1, or four "
    "train,validation,feedback,test such as 0.7,0.1,0.1,0.1; got {text!r}"
)
RATIOS_NEGATIVE = "split ratios cannot be negative; got {ratios}"
RATIOS_SUM = "split ratios must sum to 1; got {ratios} (sum {total:g})"
RATIOS_NO_TRAIN = "the train share must be above 0; got {ratios}"


def parse_ratios(text: str) -> Ratios:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise InvalidSplit(RATIOS_FORMAT.format(text=text)) from None
    if len(values) not in (3, 4):
        raise InvalidSplit(RATIOS_FORMAT.format(text=text))
    return validate_ratios(values)


def validate_ratios(ratios: Sequence[float]) -> Ratios:
    """The four shares (train, validation, feedback, test). Three numbers keep their old
    meaning, train,validation,test, with no feedback split."""
    values = tuple(float(r) for r in ratios)
    shown = ",".join(f"{r:g}" for r in values)
    if len(values) not in (3, 4) or not all(math.isfinite(r) for r in values):
        raise InvalidSplit(RATIOS_FORMAT.format(text=shown))
    if len(values) == 3:
        values = (values[0], values[1], 0.0, values[2])
    if min(values) < 0:
        raise InvalidSplit(RATIOS_NEGATIVE.format(ratios=shown))
    if not math.isclose(sum(values), 1.0, abs_tol=1e-6):
        raise InvalidSplit(RATIOS_SUM.format(ratios=shown, total=sum(values)))
    if values[0] <= 0:
        raise InvalidSplit(RATIOS_NO_TRAIN.format(ratios=shown))
    return values  # type: ignore[return-value]


def targets(total: int, ratios: Sequence[float]) -> dict[str, int]:
    """How many examples each held-out split should get (``ratios`` as ``validate_ratios``
    returns them). A non-zero share never rounds down to an empty split while there are enough
    examples for every non-empty one."""
    shares = dict(zip(SPLITS, ratios, strict=True))
    needed = 1 + sum(1 for name in HELD_OUT if shares[name] > 0)
    wanted = {}
    for name in (VALIDATION, FEEDBACK, TEST):
        count = round(total * shares[name])
        wanted[name] = max(count, 1) if shares[name] > 0 and total >= needed else count
    # Extreme shares could round the train split down to nothing; training needs one example.
    while total and sum(wanted.values()) >= total:
        larger = max(wanted, key=wanted.get)
        wanted[larger] -= 1
    return wanted


def assign_splits(
    groups: Sequence[Sequence[int]],
    group_keys: Sequence[str],
    total: int,
    ratios: Sequence[float],
    seed: int,
) -> list[str]:
    """The split of each of ``total`` examples. ``groups`` partition ``range(total)``;
    ``group_keys`` give each group a content-derived sort key (its smallest content hash)."""
    wanted = targets(total, validate_ratios(ratios))
    order = sorted(range(len(groups)), key=lambda g: group_keys[g])
    random.Random(seed).shuffle(order)
    filled = dict.fromkeys(HELD_OUT, 0)
    result = [TRAIN] * total
    for number in order:
        group = groups[number]
        side = TRAIN
        for candidate in HELD_OUT:
            if filled[candidate] + len(group) <= wanted[candidate]:
                side = candidate
                filled[candidate] += len(group)
                break
        for index in group:
            result[index] = side
    return result
