"""Ask where it matters: adaptive allocation of expert judgments, and the verdict it allows.

A uniform study sends every comparison to ``overlap`` raters in a random order. An adaptive
study instead *draws* the next comparison to judge, with replacement, with a probability that
is larger where a judgment is expected to say more: where the judgments so far stray far
from what the automated metric predicted (the metric and the experts disagree, or the raters
disagree among themselves) and, through shrinkage towards the study-wide spread, where few
judgments exist yet. A draw also picks its rater, uniformly among the study's raters.

What is estimated. The study's comparisons (one per prompt, adapter against base) and its
raters span a table of cells: y_ir, what rater r says of comparison i (1 win, ½ tie or both
bad, 0 loss for the adapter). The verdict is about μ, the mean of that table: the win rate
this panel would give over the study's prompts if every rater judged every comparison.

The estimate of one draw. Every comparison has a prediction f_i in [0, 1] from the metric
difference (:func:`evalhub.analysis.ppi.metric_predictions`), fixed when the study is
created, and f̄ is their mean. A draw of comparison i with probability q_i and rater r gives

    Z = f̄ + (y_ir − f_i) / (N q_i),

the difference estimator with inverse-probability weights (Horvitz & Thompson 1952; as
"active inference": Zrnic & Candès, "Active statistical inference", ICML 2024, eq. 3). Given
everything before the draw, E[Z] = f̄ + Σ_i q_i (ȳ_i − f_i) / (N q_i) = μ whatever the q_i,
as long as they are fixed before the draw. So the Z's, taken in the order their judgments
arrive, have a constant conditional mean μ, and the betting confidence sequence of
:mod:`evalhub.analysis.sequential` covers μ at all times with probability ≥ 1 − α, as it does
for a uniform study. Z lies in bounds known before the draw (q is floored at ε / N by mixing
with the uniform draw), which the sequence needs to size its bets.

A cell already judged costs nothing: a draw that lands on a rater's own earlier judgment of
that comparison reuses it. So no rater sees a comparison twice, and drawing with replacement
wastes no expert time. What makes it pay: a comparison where the metric and the experts
agree has small residuals y − f, so its Z's scatter little whichever rater answers; the
draws go where the residuals are large, which shrinks the variance of Z for the same number
of judgments. When the metric predicts nothing, f is ½ everywhere and the draws still favour
comparisons where raters split.

Assumptions. The y_ir do not depend on when a cell is judged; a draw waiting for a rater who
never returns is never counted (its rater, not its outcome, decides that), so the verdict then
speaks for the raters who rate. Under those, the guarantee is exact; the simulation in
``benchmarks/results/sequential_sim.md`` measures it.
"""

import math
import random
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from evalhub.analysis.sequential import (
    ALPHA,
    DEFAULT_MARGIN,
    UNDECIDED,
    Sequential,
    confidence_sequence,
    units_needed,
    verdicts,
)

METHOD = (
    "hedged-capital betting confidence sequence (Waudby-Smith & Ramdas 2024) over "
    "inverse-probability-weighted draws (adaptive allocation)"
)
# The share of each draw made uniformly: q_i ≥ ε / N, so |Z − f̄| ≤ 1 / ε.
EXPLORATION = 0.5
# A comparison's spread is shrunk towards the study-wide one with this many judgments' weight.
PRIOR_JUDGMENTS = 1.0
# The study-wide mean squared residual before any judgment: that of a fair coin against ½.
PRIOR_SQUARED_RESIDUAL = 0.25


@dataclass(frozen=True, slots=True)
class Draw:
    """One draw: the comparison, its rater, the weight 1 / (N q) and the bounds of Z that
    any outcome of any comparison could have given at this draw."""

    item: int
    rater: Hashable
    weight: float
    low: float
    high: float


def spreads(
    predictions: Mapping[int, float], judged: Sequence[tuple[int, float]]
) -> dict[int, float]:
    """Each comparison's expected absolute residual, √(mean (y − f)²), from its judgments
    ``judged`` (comparison, outcome) shrunk towards the mean over all judgments."""
    totals = dict.fromkeys(predictions, 0.0)
    counts = dict.fromkeys(predictions, 0)
    for item, value in judged:
        if item in totals:
            totals[item] += (value - predictions[item]) ** 2
            counts[item] += 1
    overall = (PRIOR_SQUARED_RESIDUAL + sum(totals.values())) / (1 + sum(counts.values()))
    return {
        item: math.sqrt(
            (totals[item] + PRIOR_JUDGMENTS * overall) / (counts[item] + PRIOR_JUDGMENTS)
        )
        for item in predictions
    }


def probabilities(
    predictions: Mapping[int, float], judged: Sequence[tuple[int, float]]
) -> dict[int, float]:
    """q_i ∝ the comparison's spread (Neyman's allocation for a difference estimator), mixed
    with the uniform draw so that every comparison keeps q_i ≥ ε / N."""
    spread = spreads(predictions, judged)
    total = sum(spread.values())
    share = 1 / len(predictions)
    return {item: (1 - EXPLORATION) * s / total + EXPLORATION * share for item, s in spread.items()}


def draw(
    predictions: Mapping[int, float],
    judged: Sequence[tuple[int, float]],
    raters: Sequence[Hashable],
    rng: random.Random,
) -> Draw:
    """The next draw: a comparison by :func:`probabilities`, a rater uniformly."""
    q = probabilities(predictions, judged)
    items = sorted(q)
    item = rng.choices(items, weights=[q[i] for i in items])[0]
    rater = rng.choice(sorted(raters, key=repr))
    n = len(items)
    return Draw(
        item=item,
        rater=rater,
        weight=1 / (n * q[item]),
        low=prediction_mean(predictions) - max(predictions[i] / (n * q[i]) for i in items),
        high=prediction_mean(predictions) + max((1 - predictions[i]) / (n * q[i]) for i in items),
    )


def prediction_mean(predictions: Mapping[int, float]) -> float:
    return sum(predictions.values()) / len(predictions)


def estimates(
    draws: Sequence[Draw], outcomes: Sequence[float], predictions: Mapping[int, float]
) -> np.ndarray:
    """Z for each completed draw, given its outcome y."""
    centre = prediction_mean(predictions)
    return np.array(
        [
            centre + d.weight * (y - predictions[d.item])
            for d, y in zip(draws, outcomes, strict=True)
        ],
        dtype=float,
    )


@dataclass(frozen=True, slots=True)
class Completed:
    """A draw whose judgment is in: its outcome y, and how many distinct expert judgments the
    study had when it completed (a reused judgment adds none)."""

    draw: Draw
    outcome: float
    judgments: int


def monitor(
    completed: Sequence[Completed],
    predictions: Mapping[int, float],
    *,
    judged: Sequence[float],
    alpha: float = ALPHA,
    margin: float = DEFAULT_MARGIN,
) -> Sequential:
    """The interval, verdict and first deciding judgment of an adaptive study, from its draws
    in the order they completed; ``judged`` holds the outcome of every distinct judgment."""
    z = estimates([c.draw for c in completed], [c.outcome for c in completed], predictions)
    values = np.array(judged, dtype=float)
    count = len(z)
    if count:
        low, high = confidence_sequence(
            z,
            alpha=alpha,
            lower=[c.draw.low for c in completed],
            upper=[c.draw.high for c in completed],
            centre=prediction_mean(predictions),
        )
    else:
        low = high = np.array([])
    verdict, decided = verdicts(low, high, margin=margin)
    needed = None
    if verdict == UNDECIDED and count:
        more = units_needed(z, 0.0, alpha=alpha, margin=margin)
        per_draw = completed[-1].judgments / count
        needed = None if more is None else math.ceil(more * per_draw)
    return Sequential(
        verdict=verdict,
        judgments=len(values),
        units=count,
        wins=int((values == 1).sum()),
        losses=int((values == 0).sum()),
        ties=int((values == 0.5).sum()),
        estimate=float(np.clip(z.mean(), 0.0, 1.0)) if count else None,
        interval=(float(low[-1]), float(high[-1])) if count else (0.0, 1.0),
        rater_design_effect=1.0,
        raters_at_large=False,
        alpha=alpha,
        margin=margin,
        decided_at=completed[decided].judgments if decided is not None else None,
        judgments_needed=needed,
        method=METHOD,
    )
