"""Per-criterion score differences between two systems.

The mean is over judgments (what a reader expects "mean difference" to mean). Its interval is a
paired bootstrap that resamples whole items, keeping each judgment's two scores together and the
several raters of one item together. The Wilcoxon signed-rank test runs on one difference per
item (the mean over its raters), because judgments of the same item are not independent.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import wilcoxon

from evalhub.analysis.base import (
    BOOTSTRAP_RESAMPLES,
    MIN_ITEMS,
    REASON_FEW_ITEMS,
    REASON_NO_VARIATION,
    Insufficient,
    Interval,
    TestResult,
    clustered_bootstrap,
)
from evalhub.analysis.records import Rating

EXACT_WILCOXON_MAX_N = 50


@dataclass(frozen=True, slots=True)
class CriterionSummary:
    """Scores of ``system`` minus scores of ``opponent`` on one criterion (1–5 scale)."""

    criterion: str
    system: str
    opponent: str
    n: int
    items: int
    mean_system: float | None
    mean_opponent: float | None
    mean_difference: float | None
    interval: Interval | Insufficient
    wilcoxon: TestResult | Insufficient


def wilcoxon_signed_rank(differences: Sequence[float]) -> TestResult | Insufficient:
    """Two-sided Wilcoxon signed-rank test; zero differences are dropped (Wilcox's method)."""
    n = len(differences)
    if n < MIN_ITEMS:
        return Insufficient(REASON_FEW_ITEMS, n, MIN_ITEMS)
    nonzero = [d for d in differences if d != 0]
    if len(nonzero) < MIN_ITEMS:
        return Insufficient(REASON_NO_VARIATION, len(nonzero), MIN_ITEMS)
    # The exact null distribution needs distinct |d|; with ties (common for per-item means of
    # 1–5 scores) scipy would fall back to a slow permutation test, so use the normal
    # approximation with tie correction there and for large n.
    tied = len({abs(d) for d in nonzero}) < len(nonzero)
    method = "approx" if tied or len(nonzero) > EXACT_WILCOXON_MAX_N else "exact"
    result = wilcoxon(nonzero, zero_method="wilcox", alternative="two-sided", method=method)
    return TestResult(
        float(result.statistic),
        float(result.pvalue),
        len(nonzero),
        f"Wilcoxon signed-rank ({'exact' if method == 'exact' else 'normal approximation'})",
    )


def criterion_summary(
    ratings: Sequence[Rating],
    criterion: str,
    system: str,
    opponent: str,
    *,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> CriterionSummary:
    per_item: dict[int, list[float]] = defaultdict(list)
    own: list[float] = []
    other: list[float] = []
    for r in ratings:
        if not r.compares(system, opponent):
            continue
        diff = r.score_difference(criterion, system)
        if diff is None:
            continue
        a, b = r.scores[criterion]
        mine, theirs = (a, b) if r.system_a == system else (b, a)
        own.append(float(mine))
        other.append(float(theirs))
        per_item[r.item].append(diff)
    n = len(own)
    sums = np.array([sum(v) for v in per_item.values()], dtype=float)
    counts = np.array([len(v) for v in per_item.values()], dtype=float)
    return CriterionSummary(
        criterion=criterion,
        system=system,
        opponent=opponent,
        n=n,
        items=len(per_item),
        mean_system=float(np.mean(own)) if n else None,
        mean_opponent=float(np.mean(other)) if n else None,
        mean_difference=float(np.mean(own) - np.mean(other)) if n else None,
        interval=clustered_bootstrap(sums, counts, seed=seed, resamples=resamples),
        wilcoxon=wilcoxon_signed_rank([float(s / c) for s, c in zip(sums, counts, strict=True)]),
    )
