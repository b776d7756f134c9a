"""Tiny constructors for unblinded ratings, so each test spells out only what it is about."""

from evalhub.analysis.records import Rating


def rating(item: int, verdict: str, rater: str = "r1", **fields) -> Rating:
    fields.setdefault("system_a", "adapter")
    fields.setdefault("system_b", "base")
    return Rating(item=item, rater=rater, verdict=verdict, **fields)


def one_per_item(verdicts: list[str], **fields) -> list[Rating]:
    """One rater, one judgment per item, items numbered from 0."""
    return [rating(i, v, **fields) for i, v in enumerate(verdicts)]
