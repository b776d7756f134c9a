"""Shared pieces of the statistics: result types, the small-sample thresholds, the bootstrap.

Small-sample honesty. An interval, a test or an agreement coefficient computed from a handful of
judgments looks as precise as one computed from thousands, so below these thresholds the
functions return :class:`Insufficient` (with the reason, the n they had and the n they need)
instead of a number. Raw counts and observed proportions are always reported, with their n.

- ``MIN_JUDGMENTS`` (10): judgments of a pair before a Wilson interval is given.
- ``MIN_DECISIVE`` (10): decisive (non-tie) judgments before a sign or binomial test
  (pair significance, position bias, length bias).
- ``MIN_ITEMS`` (10): distinct items (comparisons) before an item-clustered bootstrap interval,
  a Wilcoxon test, a Bradley–Terry fit, Fleiss' κ, Krippendorff's α, percent agreement, a
  rater's agreement with the majority, or a metric-vs-human comparison. The item, not the
  judgment, is the independent unit when several raters judge one item.
- ``MIN_SHARED_ITEMS`` (10): items two raters both judged before their Cohen's κ.
- ``MIN_GOLD`` (5): gold judgments before a rater's gold accuracy.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

MIN_JUDGMENTS = 10
MIN_DECISIVE = 10
MIN_ITEMS = 10
MIN_SHARED_ITEMS = 10
MIN_GOLD = 5

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
# Fewer where each resample refits a model or recomputes a coefficient (ties, length control,
# agreement): the report is built on page load.
MODEL_RESAMPLES = 500
# Resampling is done in blocks of at most this many drawn indices, so 100,000 judgments never
# need a resamples × items matrix in memory at once.
_BOOTSTRAP_CELLS = 2_000_000

THRESHOLDS = {
    "min_judgments": MIN_JUDGMENTS,
    "min_decisive": MIN_DECISIVE,
    "min_items": MIN_ITEMS,
    "min_shared_items": MIN_SHARED_ITEMS,
    "min_gold": MIN_GOLD,
    "confidence": CONFIDENCE,
    "bootstrap_resamples": BOOTSTRAP_RESAMPLES,
    "model_resamples": MODEL_RESAMPLES,
}

REASON_FEW_JUDGMENTS = "fewer judgments than the minimum"
REASON_FEW_DECISIVE = "fewer decisive judgments than the minimum"
REASON_FEW_ITEMS = "fewer items than the minimum"
REASON_FEW_SHARED = "fewer shared items than the minimum"
REASON_FEW_GOLD = "fewer gold judgments than the minimum"
REASON_NO_VARIATION = "every rating falls in one category, so chance agreement is total"


@dataclass(frozen=True, slots=True)
class Insufficient:
    """Stands where a number would be when the data cannot support one."""

    reason: str
    n: int
    needed: int
    insufficient: bool = True


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float
    method: str


@dataclass(frozen=True, slots=True)
class TestResult:
    statistic: float
    p_value: float
    n: int
    method: str


def clustered_bootstrap(
    sums: np.ndarray,
    counts: np.ndarray,
    *,
    statistic: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Interval | Insufficient:
    """Percentile interval of a ratio of totals, resampling whole items with replacement.

    ``sums[k]`` and ``counts[k]`` are item k's total score and number of observations (a
    vector per item is allowed: shape (items, d)). Drawing item k m times adds m × its totals,
    which keeps the several judgments of one item together. ``statistic`` maps the resampled
    totals (shape (block, ...)) to one value per resample; the default is sums / counts.
    Each resample draws k item indices uniformly with replacement.
    """
    sums = np.asarray(sums, dtype=float)
    counts = np.asarray(counts, dtype=float)
    k = len(sums)
    if k < MIN_ITEMS:
        return Insufficient(REASON_FEW_ITEMS, k, MIN_ITEMS)
    rng = np.random.default_rng(seed)
    stat = statistic or (lambda s, c: s / c)
    values: list[np.ndarray] = []
    done = 0
    while done < resamples:
        block = max(1, min(resamples - done, _BOOTSTRAP_CELLS // k))
        drawn = rng.integers(0, k, size=(block, k))
        values.append(
            np.asarray(stat(sums[drawn].sum(axis=1), counts[drawn].sum(axis=1)), dtype=float)
        )
        done += block
    flat = np.concatenate(values)
    flat = flat[np.isfinite(flat)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(flat, [tail, 100 - tail])
    return Interval(float(low), float(high), "item-clustered bootstrap percentile")


def resample_counts(
    k: int, resamples: int, *, seed: int, cells_per_resample: int | None = None
) -> Iterator[np.ndarray]:
    """Bootstrap resamples of ``k`` clusters as counts, in blocks: each block has shape
    (rows, k), row r holding how often each cluster was drawn in that resample (k draws with
    replacement). A block stays under the memory bound when a caller spreads each row over
    ``cells_per_resample`` values (e.g. per judgment; default k)."""
    rng = np.random.default_rng(seed)
    block = max(1, _BOOTSTRAP_CELLS // max(k, cells_per_resample or k))
    for start in range(0, resamples, block):
        rows = min(block, resamples - start)
        drawn = rng.integers(0, k, size=(rows, k)) + k * np.arange(rows)[:, None]
        yield np.bincount(drawn.ravel(), minlength=rows * k).reshape(rows, k).astype(float)


def median_or_none(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if len(values) else None
