"""Pairwise win rates: (wins + ½ ties) / n with Wilson and item-clustered bootstrap intervals,
an exact sign test on the decisive judgments, and tie and both-bad rates.

"Both bad" expresses no preference between the two outputs, so in the win rate it counts like a
tie (half a win each); its own rate is reported beside the tie rate so it is never hidden.
"""

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, norm

from evalhub.analysis.base import (
    BOOTSTRAP_RESAMPLES,
    CONFIDENCE,
    MIN_DECISIVE,
    MIN_JUDGMENTS,
    REASON_FEW_DECISIVE,
    REASON_FEW_JUDGMENTS,
    Insufficient,
    Interval,
    TestResult,
    clustered_bootstrap,
)
from evalhub.analysis.records import BOTH_BAD, TIE, Rating


@dataclass(frozen=True, slots=True)
class PairSummary:
    """How ``system`` fared against ``opponent``; rates are shares of ``n`` judgments."""

    system: str
    opponent: str
    n: int
    items: int
    wins: int
    losses: int
    ties: int
    both_bad: int
    win_rate: float | None
    tie_rate: float | None
    both_bad_rate: float | None
    wilson: Interval | Insufficient
    bootstrap: Interval | Insufficient
    sign_test: TestResult | Insufficient


def wilson_interval(
    successes: float, n: int, *, confidence: float = CONFIDENCE
) -> Interval | Insufficient:
    """Wilson score interval for a proportion; ``successes`` may hold half counts for ties."""
    if n < MIN_JUDGMENTS:
        return Insufficient(REASON_FEW_JUDGMENTS, n, MIN_JUDGMENTS)
    z = float(norm.ppf(1 - (1 - confidence) / 2))
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return Interval(max(0.0, centre - half), min(1.0, centre + half), "Wilson score")


def sign_test(wins: int, losses: int) -> TestResult | Insufficient:
    """Exact two-sided binomial test of wins against losses (ties left out), p = ½."""
    n = wins + losses
    if n < MIN_DECISIVE:
        return Insufficient(REASON_FEW_DECISIVE, n, MIN_DECISIVE)
    result = binomtest(wins, n, 0.5, alternative="two-sided")
    return TestResult(wins / n, float(result.pvalue), n, "exact two-sided sign test")


def pair_summary(
    ratings: Sequence[Rating],
    system: str,
    opponent: str,
    *,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> PairSummary:
    """Summarise the judgments that compared ``system`` with ``opponent`` (others are ignored)."""
    wins = losses = ties = both_bad = 0
    per_item: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in ratings:
        if not r.compares(system, opponent):
            continue
        outcome = r.outcome_for(system)
        if r.verdict == TIE:
            ties += 1
        elif r.verdict == BOTH_BAD:
            both_bad += 1
        elif outcome == 1.0:
            wins += 1
        else:
            losses += 1
        totals = per_item[r.item]
        totals[0] += outcome
        totals[1] += 1
    n = wins + losses + ties + both_bad
    score = wins + 0.5 * (ties + both_bad)
    totals = np.array(list(per_item.values())).reshape(-1, 2)
    return PairSummary(
        system=system,
        opponent=opponent,
        n=n,
        items=len(per_item),
        wins=wins,
        losses=losses,
        ties=ties,
        both_bad=both_bad,
        win_rate=score / n if n else None,
        tie_rate=ties / n if n else None,
        both_bad_rate=both_bad / n if n else None,
        wilson=wilson_interval(score, n),
        bootstrap=clustered_bootstrap(totals[:, 0], totals[:, 1], seed=seed, resamples=resamples),
        sign_test=sign_test(wins, losses),
    )
