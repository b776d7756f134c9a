"""Per-rater quality: agreement with the other raters' majority, accuracy on gold items, time on
task, and how often they chose the left side.

Agreement with the majority is leave-one-out: on each item the rater judged, their verdict is
compared with the most common verdict of the *other* raters of that item; items where the
others have no single most common verdict (or there are no others) are not counted, and nor
are gold items, which are scored against their known answer instead.
"""

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from evalhub.analysis.base import (
    MIN_GOLD,
    MIN_ITEMS,
    REASON_FEW_GOLD,
    REASON_FEW_ITEMS,
    Insufficient,
    median_or_none,
)
from evalhub.analysis.records import DECISIVE, Rating


@dataclass(frozen=True, slots=True)
class Share:
    value: float
    hits: int
    n: int


@dataclass(frozen=True, slots=True)
class RaterSummary:
    rater: str
    judgments: int
    flagged: int
    majority_agreement: Share | Insufficient
    gold_accuracy: Share | Insufficient
    median_time_ms: float | None
    timed: int
    left_share: float | None


def plurality(verdicts: Sequence[str]) -> str | None:
    """The single most common verdict, or None when there is none or it is shared; unlike
    :func:`evalhub.analysis.preferences.majority`, it need not be more than half."""
    top = Counter(verdicts).most_common(2)
    if not top or (len(top) == 2 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


def share_or_insufficient(hits: int, n: int, needed: int, reason: str) -> Share | Insufficient:
    if n < needed:
        return Insufficient(reason, n, needed)
    return Share(hits / n, hits, n)


def rater_summaries(ratings: Sequence[Rating]) -> list[RaterSummary]:
    by_item: dict[int, list[Rating]] = defaultdict(list)
    by_rater: dict[str, list[Rating]] = defaultdict(list)
    for r in ratings:
        by_item[r.item].append(r)
        by_rater[r.rater].append(r)
    summaries = []
    for rater in sorted(by_rater):
        mine = by_rater[rater]
        agree = compared = 0
        for r in mine:
            if r.gold is not None:
                continue  # gold items are scored against their answer, not the majority
            others = plurality([o.verdict for o in by_item[r.item] if o.rater != rater])
            if others is not None:
                compared += 1
                agree += r.verdict == others
        gold = [r for r in mine if r.gold is not None]
        times = [r.time_ms for r in mine if r.time_ms is not None]
        decisive = [r for r in mine if r.verdict in DECISIVE]
        summaries.append(
            RaterSummary(
                rater=rater,
                judgments=len(mine),
                flagged=sum(r.flagged for r in mine),
                majority_agreement=share_or_insufficient(
                    agree, compared, MIN_ITEMS, REASON_FEW_ITEMS
                ),
                gold_accuracy=share_or_insufficient(
                    sum(r.verdict == r.gold for r in gold), len(gold), MIN_GOLD, REASON_FEW_GOLD
                ),
                median_time_ms=median_or_none(times),
                timed=len(times),
                left_share=(
                    sum(r.verdict == r.left for r in decisive) / len(decisive) if decisive else None
                ),
            )
        )
    return summaries
