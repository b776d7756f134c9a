"""Ask where it matters: adaptive allocation of expert judgments, and the verdict it allows.

A uniform study sends every comparison to ``overlap`` raters in a random order. An adaptive
study instead *draws* the next comparison to judge, with replacement, with a probability that
is larger where a judgment is expected to say more, and a rater uniformly among the study's
raters. A draw that lands on a rater's own earlier judgment of that comparison reuses it: no
rater sees a comparison twice, and a reused draw costs no expert time.

What is estimated. The study's comparisons (one per prompt, adapter against base) and its
raters span a table of cells: y_ir, what rater r says of comparison i (1 win, ½ tie or both
bad, 0 loss for the adapter). The verdict is about μ, the mean of that table: the win rate
this panel would give over the study's prompts if every rater judged every comparison.

The estimate of one draw. Every comparison has a metric prediction f_i in [0, 1]
(:func:`evalhub.analysis.ppi.metric_predictions`), fixed when the study is created. Before
each draw, from the judgments made so far only:

1. *Calibration* (as PPI++'s power tuning: Angelopoulos, Duchi & Zrnic, "PPI++", 2023): the
   prediction becomes g_i = ȳ + b (f_i − f̄_J), clipped to [0, 1], where ȳ and f̄_J are the mean
   outcome and mean prediction of the judgments so far and b, in [0, 1], their least-squares
   slope shrunk towards 1 (the metric taken as it is) with about one judgment's weight. A
   metric that points the right way but too surely is flattened; one that predicts nothing
   gets b ≈ 0, and g is the running mean.
2. *Where to ask* (Neyman's allocation for a difference estimator: q_i ∝ the residual spread
   σ_i of y − g_i). σ_i is learnt from the squared residuals of the judgments so far: those
   of comparisons whose prediction falls in the same band of [0, 1] (a fifth wide), shrunk
   towards the study-wide mean, then those of the comparison itself, shrunk towards its
   band's. So comparisons never judged are still drawn more where the metric has been missing
   for comparisons like them, and a comparison whose raters split is drawn again. q is mixed
   half and half with the uniform draw, so N q_i ≥ ½ and an estimate never strays more than
   twice as far from the centre as a uniform draw's.

A draw of comparison i and rater r then gives

    Z = ḡ + (y_ir − g_i) / (N q_i),      ḡ the mean of g over all N comparisons,

the difference estimator with inverse-probability weights (Horvitz & Thompson 1952; as
"active inference": Zrnic & Candès, "Active statistical inference", ICML 2024, eq. 3). Given
everything before the draw, E[Z] = ḡ + Σ_i q_i (ȳ_i − g_i) / (N q_i) = μ, whatever g and q
are, as long as both are fixed before the draw. So the Z's, in the order their judgments
arrive, have a constant conditional mean μ, and the betting confidence sequence of
:mod:`evalhub.analysis.sequential` covers μ at all times with probability ≥ 1 − α, as it does
for a uniform study. Z lies in bounds known before the draw, [ḡ − max g_i / (N q_i),
ḡ + max (1 − g_i) / (N q_i)], which the sequence needs to size its bets.

Where it pays. The variance of Z for one judgment is about Σ_i m_i / (N² q_i), m_i the mean
squared residual of comparison i: uniform draws give the mean of m_i, Neyman's q its squared
mean of √m_i. Both beat the plain outcome when the metric predicts the experts on most
prompts, and the targeting adds most where the residuals differ between bands of the
prediction. ``benchmarks/results/sequential_sim.md`` measures where it pays and where not.

Assumptions. The y_ir do not depend on when a cell is judged; a draw waiting for a rater who
never returns is never counted (its rater, not its outcome, decides that), so the verdict then
speaks for the raters who rate. Under those, the guarantee is exact.
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
    "inverse-probability-weighted difference estimates with a calibrated metric "
    "(adaptive allocation)"
)
# The share of each draw made uniformly: q_i ≥ ε / N.
EXPLORATION = 0.5
# Predictions are grouped into this many equal bands of [0, 1] to learn where the metric misses.
BANDS = 5
# A band's mean squared residual is shrunk towards the study-wide one with this many judgments'
# weight, and a comparison's own towards its band's with this many.
BAND_PRIOR_JUDGMENTS = 2.0
PRIOR_JUDGMENTS = 1.0
# The study-wide mean squared residual before any judgment: that of a fair coin against ½.
PRIOR_SQUARED_RESIDUAL = 0.25
# The calibration slope is shrunk towards 1 with this weight, in units of Σ (f − f̄)²: about
# one judgment's, for predictions that spread as the tanh map's do (SD about 0.3).
SLOPE_PRIOR = 0.1


@dataclass(frozen=True, slots=True)
class Draw:
    """One draw: the comparison, its rater, the weight 1 / (N q), the calibrated prediction
    g_i of the comparison drawn, the centre ḡ, and the bounds of Z that any outcome of any
    comparison could have given at this draw."""

    item: int
    rater: Hashable
    weight: float
    prediction: float
    centre: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Design:
    """What the next draw is made from, for the comparisons in a fixed order: the calibrated
    predictions g, the residual spreads σ and the probabilities q."""

    calibrated: np.ndarray
    spreads: np.ndarray
    probabilities: np.ndarray

    def draw(self, index: int, item: int, rater: Hashable) -> Draw:
        """The draw of the comparison at ``index`` (called ``item``) and ``rater``."""
        g = self.calibrated
        scale = 1 / (len(g) * self.probabilities)
        centre = float(g.mean())
        return Draw(
            item=item,
            rater=rater,
            weight=float(scale[index]),
            prediction=float(g[index]),
            centre=centre,
            low=centre - float((g * scale).max()),
            high=centre + float(((1 - g) * scale).max()),
        )


def calibrate(f: np.ndarray, judged_f: np.ndarray, outcomes: np.ndarray) -> np.ndarray:
    """g = ȳ + b (f − f̄_J) in [0, 1]: b the slope of ``outcomes`` on their comparisons'
    predictions ``judged_f``, shrunk towards 1 and clipped to [0, 1]; f itself before any
    judgment."""
    if not len(outcomes):
        return f.copy()
    centred = judged_f - judged_f.mean()
    slope = (float(centred @ (outcomes - outcomes.mean())) + SLOPE_PRIOR) / (
        float(centred @ centred) + SLOPE_PRIOR
    )
    slope = min(max(slope, 0.0), 1.0)
    return np.clip(outcomes.mean() + slope * (f - judged_f.mean()), 0.0, 1.0)


def design(f: np.ndarray, items: np.ndarray, outcomes: np.ndarray) -> Design:
    """The design for comparisons with predictions ``f`` after the judgments so far: the
    comparison ``items[k]`` (an index into f) was judged ``outcomes[k]``."""
    n = len(f)
    g = calibrate(f, f[items], outcomes)
    squares = (outcomes - g[items]) ** 2
    overall = (PRIOR_SQUARED_RESIDUAL + squares.sum()) / (1 + len(squares))
    band = np.minimum((f * BANDS).astype(int), BANDS - 1)
    band_mean = (np.bincount(band[items], squares, BANDS) + BAND_PRIOR_JUDGMENTS * overall) / (
        np.bincount(band[items], minlength=BANDS) + BAND_PRIOR_JUDGMENTS
    )
    spread = np.sqrt(
        (np.bincount(items, squares, n) + PRIOR_JUDGMENTS * band_mean[band])
        / (np.bincount(items, minlength=n) + PRIOR_JUDGMENTS)
    )
    q = (1 - EXPLORATION) * spread / spread.sum() + EXPLORATION / n
    return Design(calibrated=g, spreads=spread, probabilities=q)


def study_design(
    predictions: Mapping[int, float], judged: Sequence[tuple[int, float]]
) -> tuple[list[int], Design]:
    """The comparisons in order and their design, from each comparison's prediction and the
    judgments so far, (comparison, outcome); judgments of other comparisons are left out."""
    items = sorted(predictions)
    index = {item: k for k, item in enumerate(items)}
    kept = [(index[item], value) for item, value in judged if item in index]
    return items, design(
        np.array([predictions[i] for i in items], dtype=float),
        np.array([k for k, _ in kept], dtype=int),
        np.array([v for _, v in kept], dtype=float),
    )


def probabilities(
    predictions: Mapping[int, float], judged: Sequence[tuple[int, float]]
) -> dict[int, float]:
    """Each comparison's probability of being drawn next."""
    items, plan = study_design(predictions, judged)
    return dict(zip(items, plan.probabilities.tolist(), strict=True))


def draw(
    predictions: Mapping[int, float],
    judged: Sequence[tuple[int, float]],
    raters: Sequence[Hashable],
    rng: random.Random,
) -> Draw:
    """The next draw: a comparison by the design's probabilities, a rater uniformly."""
    items, plan = study_design(predictions, judged)
    index = rng.choices(range(len(items)), weights=plan.probabilities.tolist())[0]
    rater = rng.choice(sorted(raters, key=repr))
    return plan.draw(index, items[index], rater)


def prediction_mean(predictions: Mapping[int, float]) -> float:
    return sum(predictions.values()) / len(predictions)


def estimates(draws: Sequence[Draw], outcomes: Sequence[float]) -> np.ndarray:
    """Z = ḡ + (y − g_i) / (N q_i) for each completed draw, given its outcome y."""
    return np.array(
        [d.centre + d.weight * (y - d.prediction) for d, y in zip(draws, outcomes, strict=True)],
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
    z = estimates([c.draw for c in completed], [c.outcome for c in completed])
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
