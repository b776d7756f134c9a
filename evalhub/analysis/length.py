"""A win rate that a longer answer cannot buy: the length-controlled win rate.

As AlpacaEval's length-controlled win rate does (Dubois et al. 2024, "Length-Controlled
AlpacaEval: A Simple Way to Debias Automatic Evaluators", arXiv:2404.04475), a logistic model of
each judgment's outcome for ``system`` (1 won, 0 lost, ½ tie or both bad, a fractional response)
on the log ratio of the two answers' lengths:

    logit P(system preferred) = β₀ + β₁ · log(length of system's answer / opponent's)

The length-controlled win rate is the model's prediction at equal lengths, averaged over the
prompts; with no prompt-level term that is σ(β₀) for every prompt. β₁ is the length effect,
reported as the odds ratio per doubling of the length ratio, exp(β₁ · log 2). Lengths are
tokens when both are known, else characters: a ratio, so the unit cancels.

The fit is maximum likelihood by Newton's method for every bootstrap resample at once.
``PRIOR_WEIGHT`` virtual ties at length ratios ½ and 2 keep it finite when a resample's
outcomes are separated by length. Intervals resample whole prompts, seeded.
"""

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evalhub.analysis.base import (
    CONFIDENCE,
    MIN_ITEMS,
    MODEL_RESAMPLES,
    REASON_FEW_ITEMS,
    Insufficient,
    Interval,
    resample_counts,
)
from evalhub.analysis.records import Rating

PRIOR_WEIGHT = 0.5
REASON_EQUAL_LENGTHS = (
    "the ratio of the two answer lengths never varies, so its effect cannot be measured"
)
INTERVAL_METHOD = "prompt-clustered bootstrap percentile"
_NEWTON_STEPS = 50
_TOLERANCE = 1e-7


@dataclass(frozen=True, slots=True)
class LengthControlled:
    """A system against its opponent over the ``n`` judgments whose lengths are known;
    ``length_ratio`` is the geometric mean of system's length / opponent's over them."""

    n: int
    prompts: int
    length_ratio: float
    win_rate: float
    win_rate_interval: Interval
    lc_win_rate: float
    lc_win_rate_interval: Interval
    odds_ratio_per_doubling: float
    odds_ratio_interval: Interval


@dataclass(frozen=True, slots=True)
class PairLength:
    system: str
    opponent: str
    estimate: LengthControlled | Insufficient


def logistic_fit(
    covariate: np.ndarray,
    outcome: np.ndarray,
    weights: np.ndarray,
    *,
    prior_weight: float = PRIOR_WEIGHT,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """(β₀, β₁) of logit P = β₀ + β₁ x for each row of ``weights`` (batch, n): a weighted
    fractional-response logistic regression, with ``prior_weight`` virtual ½ outcomes at
    x = ±log 2, by Newton's method from ``start`` (default 0). Returns (batch, 2)."""
    x = np.concatenate([np.asarray(covariate, dtype=float), [-math.log(2), math.log(2)]])
    y = np.concatenate([np.asarray(outcome, dtype=float), [0.5, 0.5]])
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    w = np.hstack([weights, np.full((len(weights), 2), prior_weight)])
    beta = np.zeros((len(w), 2)) if start is None else np.tile(start, (len(w), 1))
    for _ in range(_NEWTON_STEPS):
        mu = 1 / (1 + np.exp(-(beta[:, :1] + beta[:, 1:] * x)))
        residual = w * (y - mu)
        gradient = np.column_stack([residual.sum(axis=1), residual @ x])
        spread = w * mu * (1 - mu)
        cross = spread @ x
        information = np.stack(
            [np.column_stack([spread.sum(axis=1), cross]), np.column_stack([cross, spread @ x**2])],
            axis=1,
        )
        step = np.linalg.solve(information, gradient[:, :, None])[:, :, 0]
        beta = beta + step
        if np.abs(step).max() < _TOLERANCE:
            break
    return beta


def length_controlled(
    ratings: Sequence[Rating],
    system: str,
    opponent: str,
    *,
    seed: int = 0,
    resamples: int = MODEL_RESAMPLES,
    confidence: float = CONFIDENCE,
    prior_weight: float = PRIOR_WEIGHT,
) -> LengthControlled | Insufficient:
    """Raw and length-controlled win rate of ``system`` against ``opponent`` with
    prompt-clustered intervals; judgments without both lengths are left out."""
    # Judgments of one item share its length ratio: one row per (prompt, ratio) with the
    # outcomes' total and count fits the same likelihood with fewer rows.
    rows: dict[tuple[int, float], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in ratings:
        won = r.outcome_for(system)
        if won is None or not r.compares(system, opponent) or not r.length_a or not r.length_b:
            continue
        ratio = math.log(r.length_a / r.length_b)
        row = rows[(r.cluster, ratio if r.system_a == system else -ratio)]
        row[0] += won
        row[1] += 1
    prompts = sorted({cluster for cluster, _ in rows})
    k = len(prompts)
    if k < MIN_ITEMS:
        return Insufficient(REASON_FEW_ITEMS, k, MIN_ITEMS)
    x = np.array([ratio for _, ratio in rows])
    totals, counts = np.array(list(rows.values())).T
    if np.ptp(x) == 0:
        return Insufficient(REASON_EQUAL_LENGTHS, 1, 2)  # one length ratio; a slope needs two
    y = totals / counts
    position = {p: i for i, p in enumerate(prompts)}
    member = np.array([position[cluster] for cluster, _ in rows])
    point = logistic_fit(x, y, counts, prior_weight=prior_weight)
    betas, raws = [point], [np.array([totals.sum() / counts.sum()])]
    for drawn in resample_counts(k, resamples, seed=seed, cells_per_resample=len(y)):
        weights = drawn[:, member] * counts  # a row weighs as often as its prompt was drawn
        # a resample's fit starts from the data's: a few Newton steps away
        betas.append(logistic_fit(x, y, weights, prior_weight=prior_weight, start=point[0]))
        raws.append((weights @ y) / weights.sum(axis=1))
    beta, raw = np.concatenate(betas), np.concatenate(raws)  # row 0: the data itself
    lc = 1 / (1 + np.exp(-beta[:, 0]))
    odds = np.exp(beta[:, 1] * math.log(2))
    tail = (1 - confidence) / 2 * 100

    def interval(values: np.ndarray) -> Interval:
        low, high = np.percentile(values[1:], [tail, 100 - tail])
        return Interval(float(low), float(high), INTERVAL_METHOD)

    return LengthControlled(
        n=round(counts.sum()),
        prompts=k,
        length_ratio=float(np.exp((counts @ x) / counts.sum())),
        win_rate=float(raw[0]),
        win_rate_interval=interval(raw),
        lc_win_rate=float(lc[0]),
        lc_win_rate_interval=interval(lc),
        odds_ratio_per_doubling=float(odds[0]),
        odds_ratio_interval=interval(odds),
    )
