"""How sure the agreement figures are, and whether the raters drift.

Intervals: percent agreement, Fleiss' κ, Krippendorff's α and each pair of raters' Cohen's κ
(as in ``agreement``) recomputed on item-bootstrap resamples (whole comparisons with all their
ratings, seeded); the percentile interval of those values. Fleiss' κ resamples its own items
(those with the most common number of raters), Cohen's κ the items both raters judged. Each
coefficient is written here once more, for all resamples at once as item weights (the packages
take one table at a time, too slow for a page); at weight 1 everywhere they equal the values
of the packages and of ``agreement``, which the tests check.

Drift: each rater's judgments are split in half by the order they made them (the first half is
"early", the rest "late"); in each half, the share that agree with the other raters' majority
on the item (leave-one-out, as in ``raters``). A rater who agrees less late than early may be
tiring or speeding; the change pooled over raters gets an item-clustered bootstrap interval.
Ratings must come in the order they were made.
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from evalhub.analysis.agreement import (
    category_table,
    fleiss_groups,
    item_agreement,
    labels_by_item,
    rater_pairs,
)
from evalhub.analysis.base import (
    CONFIDENCE,
    MIN_ITEMS,
    MIN_SHARED_ITEMS,
    MODEL_RESAMPLES,
    REASON_FEW_ITEMS,
    REASON_FEW_SHARED,
    REASON_NO_VARIATION,
    Insufficient,
    Interval,
    clustered_bootstrap,
    median_or_none,
    resample_counts,
)
from evalhub.analysis.raters import Share, plurality, share_or_insufficient
from evalhub.analysis.records import Rating

INTERVAL_METHOD = "item bootstrap percentile"


@dataclass(frozen=True, slots=True)
class AgreementIntervals:
    """``pairs[i]`` is the interval of Cohen's κ of ``AgreementSummary.pairs[i]``."""

    percent_agreement: Interval | Insufficient
    fleiss_kappa: Interval | Insufficient
    krippendorff_alpha: Interval | Insufficient
    pairs: list[Interval | Insufficient]


@dataclass(frozen=True, slots=True)
class RaterDrift:
    rater: str
    early: Share | Insufficient
    late: Share | Insufficient
    change: float | None
    early_median_ms: float | None
    late_median_ms: float | None


@dataclass(frozen=True, slots=True)
class Drift:
    """Pooled over raters: agreement with the others' majority in early and late halves."""

    raters: list[RaterDrift]
    early: Share | Insufficient
    late: Share | Insufficient
    change: float | None
    change_interval: Interval | Insufficient


def percent_agreement_weighted(table: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Percent agreement of ``table`` (items × categories) for each row of item ``weights``."""
    return (weights @ item_agreement(table)) / weights.sum(axis=1)


def fleiss_weighted(table: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Fleiss' κ (Fleiss 1971) of ``table`` (items × categories, m ratings each) for each row
    of item ``weights``: (P̄ − P_e) / (1 − P_e)."""
    m = table[0].sum()
    observed = weights @ ((table * table).sum(axis=1) - m) / (m * (m - 1)) / weights.sum(axis=1)
    shares = (weights @ table) / (m * weights.sum(axis=1))[:, None]
    chance = (shares * shares).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (observed - chance) / (1 - chance)


def alpha_weighted(table: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Krippendorff's α, nominal, of ``table`` (items × categories, ≥ 2 ratings each) for
    each row of item ``weights``, from the coincidence matrix (Krippendorff 2011, "Computing
    Krippendorff's alpha-reliability"): α = 1 − (n − 1)(n − Σ_c o_cc) / (n² − Σ_c n_c²)."""
    m = table.sum(axis=1)
    matching = (table * (table - 1)).sum(axis=1) / (m - 1)  # Σ_c o_cc per item
    values = weights @ table  # n_c
    n = values.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1 - (n - 1) * (n - weights @ matching) / (n * n - (values * values).sum(axis=1))


def cohen_weighted(first: np.ndarray, second: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Cohen's κ of two raters' one-hot labels (items × categories) for each row of item
    ``weights``: (p_o − p_e) / (1 − p_e)."""
    total = weights.sum(axis=1)
    observed = weights @ (first * second).sum(axis=1) / total
    chance = ((weights @ first) * (weights @ second)).sum(axis=1) / (total * total)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (observed - chance) / (1 - chance)


def _bootstrap(
    items: int,
    statistic: Callable[[np.ndarray], np.ndarray],
    seed: int,
    resamples: int,
    confidence: float,
) -> Interval | Insufficient:
    """Percentile interval of ``statistic`` (item weights → one value per resample)."""
    values = np.concatenate([statistic(w) for w in resample_counts(items, resamples, seed=seed)])
    # A resample with one category only has total chance agreement and no coefficient.
    values = values[np.isfinite(values)]
    if not len(values):
        return Insufficient(REASON_NO_VARIATION, items, MIN_ITEMS)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(low), float(high), INTERVAL_METHOD)


def _table_interval(
    table: np.ndarray,
    statistic: Callable[[np.ndarray, np.ndarray], np.ndarray],
    seed: int,
    resamples: int,
    confidence: float,
) -> Interval | Insufficient:
    if len(table) < MIN_ITEMS:
        return Insufficient(REASON_FEW_ITEMS, len(table), MIN_ITEMS)
    if table.shape[1] < 2:
        return Insufficient(REASON_NO_VARIATION, len(table), MIN_ITEMS)
    return _bootstrap(len(table), lambda w: statistic(table, w), seed, resamples, confidence)


def _cohen_interval(
    first: list[str], second: list[str], seed: int, resamples: int, confidence: float
) -> Interval | Insufficient:
    if len(first) < MIN_SHARED_ITEMS:
        return Insufficient(REASON_FEW_SHARED, len(first), MIN_SHARED_ITEMS)
    labels = sorted(set(first) | set(second))
    one_hot = np.eye(len(labels))
    a = one_hot[[labels.index(x) for x in first]]
    b = one_hot[[labels.index(x) for x in second]]
    return _bootstrap(len(a), lambda w: cohen_weighted(a, b, w), seed, resamples, confidence)


def agreement_intervals(
    ratings: Sequence[Rating],
    *,
    seed: int = 0,
    resamples: int = MODEL_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> AgreementIntervals:
    table = labels_by_item(ratings)
    groups = list(table.values())
    shared = category_table([g for g in groups if len(g) >= 2])
    same = category_table(fleiss_groups(groups)[1])
    return AgreementIntervals(
        percent_agreement=_table_interval(
            shared, percent_agreement_weighted, seed, resamples, confidence
        ),
        fleiss_kappa=_table_interval(same, fleiss_weighted, seed, resamples, confidence),
        krippendorff_alpha=_table_interval(shared, alpha_weighted, seed, resamples, confidence),
        pairs=[
            _cohen_interval(labels, others, seed, resamples, confidence)
            for _, _, labels, others in rater_pairs(table)
        ],
    )


def rater_drift(
    ratings: Sequence[Rating],
    *,
    seed: int = 0,
    resamples: int = MODEL_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> Drift:
    by_item: dict[int, list[Rating]] = defaultdict(list)
    by_rater: dict[str, list[Rating]] = defaultdict(list)
    for r in ratings:
        by_item[r.item].append(r)
        by_rater[r.rater].append(r)
    # item -> [early agreements, early compared, late agreements, late compared]
    per_item: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    rows = []
    for rater in sorted(by_rater):
        mine = by_rater[rater]
        halves = (mine[: len(mine) // 2], mine[len(mine) // 2 :])
        shares = []
        for offset, half in ((0, halves[0]), (2, halves[1])):
            agree = compared = 0
            for r in half:
                others = plurality([o.verdict for o in by_item[r.item] if o.rater != rater])
                if others is None:
                    continue
                compared += 1
                agree += r.verdict == others
                per_item[r.item][offset] += r.verdict == others
                per_item[r.item][offset + 1] += 1
            shares.append(share_or_insufficient(agree, compared, MIN_ITEMS, REASON_FEW_ITEMS))
        early, late = shares
        rows.append(
            RaterDrift(
                rater=rater,
                early=early,
                late=late,
                change=_change(early, late),
                early_median_ms=_median_time(halves[0]),
                late_median_ms=_median_time(halves[1]),
            )
        )
    totals = np.array(list(per_item.values()), dtype=float).reshape(-1, 4)
    sums, counts = totals[:, [0, 2]], totals[:, [1, 3]]
    early, late = (
        share_or_insufficient(
            int(sums[:, half].sum()), int(counts[:, half].sum()), MIN_ITEMS, REASON_FEW_ITEMS
        )
        for half in (0, 1)
    )
    change = _change(early, late)
    if change is None:
        fewer = int(counts.sum(axis=0).min()) if len(counts) else 0
        interval: Interval | Insufficient = Insufficient(REASON_FEW_ITEMS, fewer, MIN_ITEMS)
    else:
        interval = clustered_bootstrap(
            sums,
            counts,
            statistic=_late_minus_early,
            resamples=resamples,
            seed=seed,
            confidence=confidence,
        )
    return Drift(raters=rows, early=early, late=late, change=change, change_interval=interval)


def _late_minus_early(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """A resample that drew no early (or late) comparison has no change: NaN, left out."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums[:, 1] / counts[:, 1] - sums[:, 0] / counts[:, 0]


def _change(early: Share | Insufficient, late: Share | Insufficient) -> float | None:
    if isinstance(early, Insufficient) or isinstance(late, Insufficient):
        return None
    return late.value - early.value


def _median_time(ratings: Sequence[Rating]) -> float | None:
    return median_or_none([r.time_ms for r in ratings if r.time_ms is not None])
