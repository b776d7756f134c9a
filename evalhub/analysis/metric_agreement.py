"""Do the automated metrics tell the experts' story? For each metric: the share of items where
the output the metric prefers is the one the experts' majority preferred, Kendall's τ between the
metric difference and the human preference, and the items where they disagree most.

Per item: the metric difference is metric(a) − metric(b); the human preference is the mean over
its judgments of 1 (a better), 0 (b better) or ½ (tie, both bad), minus ½, so it lies in
[−½, ½] with the same sign convention. The experts' majority is the single most common verdict;
items whose majority is a tie, both bad or split, and items the metric scores equally, have no
preference to match and are left out of the match share (they still count for τ).
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy.stats import kendalltau

from evalhub.analysis.base import (
    MIN_ITEMS,
    REASON_FEW_ITEMS,
    REASON_NO_VARIATION,
    Insufficient,
    TestResult,
)
from evalhub.analysis.raters import Share, plurality, share_or_insufficient
from evalhub.analysis.records import A, B, Rating

DISAGREEMENTS_SHOWN = 10
SCATTER_POINTS = 400


@dataclass(frozen=True, slots=True)
class ItemPreference:
    item: int
    metric_a: float
    metric_b: float
    difference: float
    human: float
    majority: str | None
    judgments: int


@dataclass(frozen=True, slots=True)
class MetricAgreement:
    metric: str
    items: int
    match: Share | Insufficient
    kendall_tau: TestResult | Insufficient
    disagreements: list[ItemPreference]
    points: list[tuple[float, float, int]]
    points_total: int


def human_preferences(ratings: Sequence[Rating]) -> dict[int, tuple[float, str | None, int]]:
    """item -> (preference for a in [−½, ½], majority verdict or None, judgments)."""
    verdicts: dict[int, list[str]] = defaultdict(list)
    for r in ratings:
        verdicts[r.item].append(r.verdict)
    result = {}
    for item, vs in verdicts.items():
        score = sum(1.0 if v == A else 0.0 if v == B else 0.5 for v in vs) / len(vs)
        result[item] = (score - 0.5, plurality(vs), len(vs))
    return result


def _spread(items: list[ItemPreference], limit: int) -> list[ItemPreference]:
    """At most ``limit`` items, evenly spaced in item order, so a chart stays readable."""
    if len(items) <= limit:
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def metric_agreement(
    ratings: Sequence[Rating],
    item_metrics: Mapping[int, tuple[float | None, float | None]],
    metric: str,
    *,
    shown: int = DISAGREEMENTS_SHOWN,
    scatter_points: int = SCATTER_POINTS,
    humans: Mapping[int, tuple[float, str | None, int]] | None = None,
) -> MetricAgreement:
    """``item_metrics[item]`` holds this metric's value for output a and output b; ``humans``
    may pass ``human_preferences(ratings)`` in when several metrics are compared."""
    if humans is None:
        humans = human_preferences(ratings)
    rows = []
    for item in sorted(humans):
        a, b = item_metrics.get(item, (None, None))
        if a is None or b is None:
            continue
        human, verdict, n = humans[item]
        a, b = float(a), float(b)
        rows.append(ItemPreference(item, a, b, a - b, human, verdict, n))
    decided = [p for p in rows if p.majority in (A, B) and p.difference != 0]
    hits = sum((p.difference > 0) == (p.majority == A) for p in decided)
    misses = [p for p in decided if (p.difference > 0) != (p.majority == A)]
    misses.sort(key=lambda p: (-abs(p.human), -abs(p.difference), p.item))
    return MetricAgreement(
        metric=metric,
        items=len(rows),
        match=share_or_insufficient(hits, len(decided), MIN_ITEMS, REASON_FEW_ITEMS),
        kendall_tau=_kendall([p.difference for p in rows], [p.human for p in rows]),
        disagreements=misses[:shown],
        points=[(p.difference, p.human, p.item) for p in _spread(rows, scatter_points)],
        points_total=len(rows),
    )


def _kendall(x: Sequence[float], y: Sequence[float]) -> TestResult | Insufficient:
    if len(x) < MIN_ITEMS:
        return Insufficient(REASON_FEW_ITEMS, len(x), MIN_ITEMS)
    if len(set(x)) < 2 or len(set(y)) < 2:
        return Insufficient(REASON_NO_VARIATION, len(x), MIN_ITEMS)
    result = kendalltau(x, y)
    return TestResult(float(result.statistic), float(result.pvalue), len(x), "Kendall's tau-b")
