"""Position bias (do raters favour the left side?) and length bias (does the longer output win?).

Both look only at decisive judgments: a tie says nothing about which side or length was
preferred. Each reports the observed share and an exact two-sided binomial test against ½.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import binomtest

from evalhub.analysis.base import MIN_DECISIVE, REASON_FEW_DECISIVE, Insufficient, TestResult
from evalhub.analysis.records import DECISIVE, A, B, Rating


@dataclass(frozen=True, slots=True)
class BiasSummary:
    """``hits`` of ``n`` decisive judgments went the way the bias would predict."""

    hits: int
    n: int
    share: float | None
    test: TestResult | Insufficient


def binomial_half(hits: int, n: int, method: str) -> TestResult | Insufficient:
    if n < MIN_DECISIVE:
        return Insufficient(REASON_FEW_DECISIVE, n, MIN_DECISIVE)
    return TestResult(hits / n, float(binomtest(hits, n, 0.5).pvalue), n, method)


def position_bias(ratings: Sequence[Rating]) -> BiasSummary:
    """Share of decisive judgments won by the output displayed on the left."""
    decisive = [r for r in ratings if r.verdict in DECISIVE]
    hits = sum(r.verdict == r.left for r in decisive)
    n = len(decisive)
    return BiasSummary(
        hits, n, hits / n if n else None, binomial_half(hits, n, "exact binomial test, p=½")
    )


def length_bias(ratings: Sequence[Rating]) -> BiasSummary:
    """Share of decisive judgments won by the longer output (pairs of equal or unknown length
    are left out)."""
    hits = n = 0
    for r in ratings:
        if r.verdict not in DECISIVE or r.length_a is None or r.length_b is None:
            continue
        if r.length_a == r.length_b:
            continue
        n += 1
        longer = A if r.length_a > r.length_b else B
        hits += r.verdict == longer
    return BiasSummary(
        hits, n, hits / n if n else None, binomial_half(hits, n, "exact binomial test, p=½")
    )
