"""Win rates with the reviewers' final calls.

A final call is the label of its comparison: in the win rate "with adjudication" each comparison
counts once, by its final call where a reviewer made one and by the mean of its raters'
outcomes otherwise. Beside it, the same per-comparison win rate without any final call, so that
the two differ by the adjudication alone. A comparison every rater skipped has no raters' mean:
it counts only once a reviewer settles it. The raters' judgments are never changed; every other
statistic of the report reads them as they are.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from evalhub.analysis.records import Rating


@dataclass(frozen=True, slots=True)
class AdjudicatedPair:
    """``items``: comparisons with at least one rater's verdict; ``items_adjudicated``: the
    comparisons the win rate with adjudication counts (those plus any settled only by a final
    call); ``adjudicated``: how many of the pair's comparisons have a final call."""

    system: str
    opponent: str
    items: int
    items_adjudicated: int
    adjudicated: int
    win_rate: float | None
    win_rate_adjudicated: float | None


@dataclass(frozen=True, slots=True)
class AdjudicationSummary:
    adjudicated: int  # comparisons of the study with a final call
    pairs: list[AdjudicatedPair]


def adjudication_summary(
    ratings: Sequence[Rating],
    final_calls: Sequence[Rating],
    pairs: Sequence[tuple[str, str]],
) -> AdjudicationSummary:
    """``final_calls`` holds one record per settled comparison (its ``verdict`` the final call);
    gold comparisons, in either list, are left out."""
    calls = {r.item: r for r in final_calls if r.gold is None}
    return AdjudicationSummary(
        adjudicated=len(calls),
        pairs=[_pair(ratings, calls, system, opponent) for system, opponent in pairs],
    )


def _pair(
    ratings: Sequence[Rating], calls: dict[int, Rating], system: str, opponent: str
) -> AdjudicatedPair:
    outcomes: dict[int, list[float]] = defaultdict(list)
    for r in ratings:
        if r.gold is None and r.compares(system, opponent):
            outcomes[r.item].append(r.outcome_for(system))
    raters = {item: sum(values) / len(values) for item, values in outcomes.items()}
    settled = {
        item: call.outcome_for(system)
        for item, call in calls.items()
        if call.compares(system, opponent)
    }
    labels = raters | settled
    return AdjudicatedPair(
        system=system,
        opponent=opponent,
        items=len(raters),
        items_adjudicated=len(labels),
        adjudicated=len(settled),
        win_rate=_mean(raters.values()),
        win_rate_adjudicated=_mean(labels.values()),
    )


def _mean(values) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None
