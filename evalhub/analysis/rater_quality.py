"""Rater quality: each rater's competence from a latent-truth model, a win rate weighted by it,
the raters far below the rest, and the manager's gate on gold accuracy and time per item.

Competence is the one-coin Dawid–Skene model (Dawid & Skene 1979, "Maximum likelihood
estimation of observer error-rates using the EM algorithm", Applied Statistics 28:20–28, with
each rater's confusion matrix reduced to one accuracy, as in Raykar et al. 2010 and Zhang et al.
2014): every item has an unknown true verdict; a rater names it with probability ``p`` (their
competence) and each of the other K − 1 verdicts with probability (1 − p) / (K − 1). EM
alternates the posterior of each item's true verdict with each rater's ``p``. Gold items enter
with their known answer fixed, so a rater is measured against the other raters and the gold
alike. A Beta(1, 1) prior keeps a rater with few judgments away from 0 and 1.

Weights follow from the same model: under it, the most accurate vote weighs a rater by the log
odds of naming the truth against one given wrong verdict, log(p (K − 1) / (1 − p)) (Nitzan &
Paroush 1982); a rater at or below chance (p ≤ 1/K) weighs nothing.
"""

import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from evalhub.analysis.base import (
    BOOTSTRAP_RESAMPLES,
    Insufficient,
    Interval,
    clustered_bootstrap,
)
from evalhub.analysis.records import VERDICTS, Rating

K = len(VERDICTS)
CHANCE = 1 / K
# A rater whose competence is this far below the median of the others' is flagged, once they
# have MIN_FLAG_JUDGMENTS judgments (fewer say too little about anyone).
FAR_BELOW = 0.25
MIN_FLAG_JUDGMENTS = 5
# The gate a new study starts with: half the gold items right once a rater has judged three,
# and a median of three seconds per item (nobody reads two answers faster).
DEFAULT_MIN_GOLD_ACCURACY = 0.5
DEFAULT_MIN_MEDIAN_SECONDS = 3.0
GATE_MIN_GOLD_JUDGED = 3
_MAX_ITERATIONS = 200
_TOLERANCE = 1e-8


@dataclass(frozen=True, slots=True)
class Competence:
    rater: str
    judgments: int
    competence: float
    weight: float
    far_below: bool


def competence(ratings: Sequence[Rating]) -> dict[str, float]:
    """Each rater's one-coin Dawid–Skene accuracy, fitted by EM. Ratings on gold items
    (``Rating.gold`` set) anchor their item's true verdict to the gold answer."""
    index = {v: k for k, v in enumerate(VERDICTS)}
    raters = sorted({r.rater for r in ratings})
    items = sorted({r.item for r in ratings})
    if not raters:
        return {}
    rater_of = np.array([raters.index(r.rater) for r in ratings])
    item_ids = {item: i for i, item in enumerate(items)}
    item_of = np.array([item_ids[r.item] for r in ratings])
    label = np.array([index[r.verdict] for r in ratings])
    gold = {item_ids[r.item]: index[r.gold] for r in ratings if r.gold is not None}

    # Start from each item's share of votes (majority voting, softly).
    truth = np.zeros((len(items), K))
    np.add.at(truth, (item_of, label), 1.0)
    truth /= truth.sum(axis=1, keepdims=True)
    truth = _anchor(truth, gold)
    accuracy = np.full(len(raters), 0.5)
    for _ in range(_MAX_ITERATIONS):
        # M step: a rater's accuracy is the expected share of their verdicts that are true.
        hits = truth[item_of, label]
        right = np.bincount(rater_of, weights=hits, minlength=len(raters))
        counts = np.bincount(rater_of, minlength=len(raters))
        new = (right + 1) / (counts + 2)
        prior = truth.sum(axis=0) + 1
        prior /= prior.sum()
        # E step: each item's posterior over the true verdict given every verdict on it.
        log_right = np.log(new)[rater_of]
        log_wrong = np.log((1 - new) / (K - 1))[rater_of]
        log_post = np.tile(np.log(prior), (len(items), 1))
        np.add.at(log_post, item_of, log_wrong[:, None])
        np.add.at(log_post, (item_of, label), log_right - log_wrong)
        log_post -= log_post.max(axis=1, keepdims=True)
        truth = np.exp(log_post)
        truth /= truth.sum(axis=1, keepdims=True)
        truth = _anchor(truth, gold)
        done = np.max(np.abs(new - accuracy)) < _TOLERANCE
        accuracy = new
        if done:
            break
    return {rater: float(p) for rater, p in zip(raters, accuracy, strict=True)}


def _anchor(truth: np.ndarray, gold: Mapping[int, int]) -> np.ndarray:
    for item, answer in gold.items():
        truth[item] = 0.0
        truth[item, answer] = 1.0
    return truth


def weight(p: float) -> float:
    """The rater's weight in the competence-weighted win rate: the log odds of naming the true
    verdict against one given wrong one, 0 at or below chance."""
    return max(0.0, math.log(p * (K - 1) / (1 - p)))


def competences(ratings: Sequence[Rating]) -> list[Competence]:
    """Every rater's competence and weight, and whether they sit far below the others (by
    ``FAR_BELOW`` under the median of the other raters, with ``MIN_FLAG_JUDGMENTS``)."""
    fitted = competence(ratings)
    judged: dict[str, int] = defaultdict(int)
    for r in ratings:
        judged[r.rater] += 1
    rows = []
    for rater, p in fitted.items():
        others = [q for other, q in fitted.items() if other != rater]
        far_below = (
            bool(others)
            and judged[rater] >= MIN_FLAG_JUDGMENTS
            and p < statistics.median(others) - FAR_BELOW
        )
        rows.append(Competence(rater, judged[rater], p, weight(p), far_below))
    return rows


@dataclass(frozen=True, slots=True)
class WeightedWinRate:
    system: str
    opponent: str
    n: int
    win_rate: float | None
    bootstrap: Interval | Insufficient


def weighted_win_rate(
    ratings: Sequence[Rating],
    weights: Mapping[str, float],
    system: str,
    opponent: str,
    *,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> WeightedWinRate:
    """``system``'s win rate against ``opponent`` with each judgment weighted by its rater's
    weight: Σ w·outcome / Σ w (ties and both-bad count ½, as in the unweighted win rate), with
    an item-clustered bootstrap interval of the same ratio. Raters missing from ``weights``
    weigh nothing."""
    per_item: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
    n = 0
    for r in ratings:
        if r.gold is not None or not r.compares(system, opponent):
            continue
        n += 1
        w = weights.get(r.rater, 0.0)
        totals = per_item[r.item]
        totals[0] += w * r.outcome_for(system)
        totals[1] += w
    totals = np.array([t for t in per_item.values() if t[1] > 0]).reshape(-1, 2)
    total_weight = totals[:, 1].sum()
    return WeightedWinRate(
        system=system,
        opponent=opponent,
        n=n,
        win_rate=float(totals[:, 0].sum() / total_weight) if total_weight > 0 else None,
        bootstrap=clustered_bootstrap(totals[:, 0], totals[:, 1], seed=seed, resamples=resamples),
    )


@dataclass(frozen=True, slots=True)
class Gate:
    """What a rater must meet for their judgments to count in the verdict: gold accuracy of at
    least ``min_gold_accuracy`` once they have ``min_gold_judged`` gold judgments, and a median
    time per item of at least ``min_median_seconds``. A threshold of 0 checks nothing."""

    min_gold_accuracy: float
    min_gold_judged: int
    min_median_seconds: float


def gate_reasons(
    gate: Gate, *, gold_judged: int, gold_correct: int, median_time_ms: float | None
) -> list[str]:
    """Why a rater fails ``gate``, in words; empty when they pass."""
    reasons = []
    if (
        gate.min_gold_accuracy > 0
        and gold_judged >= gate.min_gold_judged
        and gold_correct / gold_judged < gate.min_gold_accuracy
    ):
        reasons.append(
            f"{gold_correct} of {gold_judged} gold items right (under {gate.min_gold_accuracy:.0%})"
        )
    if (
        gate.min_median_seconds > 0
        and median_time_ms is not None
        and median_time_ms / 1000 < gate.min_median_seconds
    ):
        reasons.append(
            f"median {median_time_ms / 1000:.1f} s per item (under {gate.min_median_seconds:g} s)"
        )
    return reasons
