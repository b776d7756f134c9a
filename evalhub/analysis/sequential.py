"""Anytime-valid monitoring of a win rate: a confidence sequence and a verdict after every
judgment, for judgments clustered by comparison and by rater.

Each judgment is one outcome for the adapter: 1 a win, 0 a loss, ½ a tie or "both bad" (the
report's win rate counts them the same way).

What is estimated. The win rate μ is the mean outcome over the population of prompts and the
population of raters. Judgments are not independent: the raters of one comparison judge the
same two answers (overlap), and one rater judges many comparisons. So the observation unit is
the *comparison*: once a comparison has all the judgments its assignments ask for, its mean
outcome yᵢ enters the sequence, in the order comparisons complete. Which comparisons complete
when depends on the raters' pace, not on what they chose, so the rule never peeks at outcomes.

1. Prompts. Comparisons are independent draws of prompts, and their raters are drawn at random
   from the study's panel, so given the panel the yᵢ are independent, bounded in [0, 1], with
   one mean μ_panel: the win rate these raters would give over all prompts. On them runs the
   hedged-capital betting CS of Waudby-Smith & Ramdas, "Estimating means of bounded random
   variables by betting", JRSSB 86(1), 2024 (arXiv 2010.09686), §4.2 with the predictable
   plug-in bets of eq. (26): for each candidate m two gamblers bet that the mean is above and
   below m; their averaged capital K_t(m) = ½ Π (1 + λ⁺ᵢ(xᵢ − m)) + ½ Π (1 − λ⁻ᵢ(xᵢ − m)) is a
   nonnegative martingale when the mean is m, so by Ville's inequality
   P(∃t: K_t(μ_panel) ≥ 1/α) ≤ α. This part is exact: it misses μ_panel at *any* time with
   probability at most α, however often it is read and whenever the study stops.
2. Raters. μ_panel − μ is the panel's own lean, Σ w_r u_r (u_r a rater's effect, w_r the
   rater's share of the judgments); it does not shrink with more judgments, only with more
   raters. Its variance τ² Σ w_r² is the rater term of the absolute error variance of a
   crossed prompt × rater design (generalizability theory: Brennan, *Generalizability Theory*,
   2001, §2.3 and §4.1; Kish's design effect, *Survey Sampling*, §5.4, is the same algebra).
   τ² is estimated from the judgments so far by one-way ANOVA by rater
   (:func:`rater_variance`), and the interval about its centre is widened by the square root
   of the design effect deff_t = 1 + V_r / (σ̂²_t / t), σ̂²_t / t being the variance of the
   comparisons' mean that the sequence itself allows for: the interval is the one t / deff_t
   comparisons would give. Reported intervals are intersected over time (a miss at any time is
   the same event with or without it), so they only narrow.

Which μ a study reads is its setting: the study's own raters (μ_panel, part 1 only) by
default, or raters at large (parts 1 and 2) when the manager asks for it.

The guarantee: exact (≤ α, any time) for μ_panel under independent comparisons and random
assignment of raters; for μ over raters at large, approximate, as good as the rater variance
estimated from the panel (five degrees of freedom with six raters) and the normal reading of
the widening. `benchmarks/results/sequential_sim.md` measures both. Ties at ½ move no capital
at m = ½ but shrink the variance estimate, so they narrow the interval, as they should.
(`confseq`, the authors' package, does not build on Python 3.11 without Boost, hence this
short version; tests check it against a plain loop of the same formulas and by simulation.)

Verdicts from the interval [low, high] at level α:
- ``adapter_better`` when low > ½; ``base_better`` when high < ½;
- ``equivalent`` when ½ − margin < low and high < ½ + margin (margin > 0);
- ``undecided`` otherwise, with the judgments still needed if the current estimate held.
A verdict is wrong only if the interval ever misses the truth.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2

from evalhub.analysis.records import Rating

ADAPTER_BETTER = "adapter_better"
BASE_BETTER = "base_better"
EQUIVALENT = "equivalent"
UNDECIDED = "undecided"
VERDICTS = (ADAPTER_BETTER, BASE_BETTER, EQUIVALENT, UNDECIDED)

ALPHA = 0.05
DEFAULT_MARGIN = 0.05
# Candidate means m = 0.001 … 0.999: the interval's ends are exact to a thousandth.
GRID = np.arange(1, 1000) / 1000
# Bets never risk more than half the capital (WSR's truncation c = ½).
TRUNCATION = 0.5
# "Still needed" is not estimated beyond this many more comparisons.
MAX_PROJECTION = 100_000
# How much wider the normal-mixture boundary that "still needed" projects with is than this
# betting interval, where simulated studies decide: 1.35-1.41 at true rates of 55-70 % with 20 %
# ties (benchmarks/projection_sim.py). The projection divides it out.
MIXTURE_OVER_BETTING = 1.38
BLOCK = 256
RATER_CONFIDENCE = 0.8
METHOD = (
    "hedged-capital betting confidence sequence (Waudby-Smith & Ramdas 2024) over completed "
    "comparisons, widened by the rater design effect"
)
TIES = "ties and both-bad count as half a win"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The adapter's outcome (1, ½, 0) in one judgment of comparison ``item`` by ``rater``."""

    item: int
    rater: str
    value: float


@dataclass(frozen=True, slots=True)
class Sequential:
    """The monitored state after ``judgments`` judgments of the adapter against the base, of
    which ``units`` comparisons are complete and counted."""

    verdict: str
    judgments: int
    units: int
    wins: int
    losses: int
    ties: int
    estimate: float | None
    interval: tuple[float, float]
    rater_design_effect: float
    raters_at_large: bool
    alpha: float
    margin: float
    decided_at: int | None
    judgments_needed: int | None
    method: str = METHOD
    ties_handled: str = TIES


def pair_outcomes(ratings: Sequence[Rating], adapter: str, base: str) -> list[Outcome]:
    """The adapter's outcome in each judgment of ``adapter`` against ``base``, in the order
    given (the order they were made); gold items are left out."""
    return [
        Outcome(r.item, r.rater, r.outcome_for(adapter))
        for r in ratings
        if r.gold is None and r.compares(adapter, base)
    ]


def bets(x: np.ndarray, alpha: float, centre: float = 0.5) -> np.ndarray:
    """Predictable plug-in bet sizes λ_t before truncation (WSR eq. 26): λ_t uses only
    x_1..x_{t-1}, through the running mean μ̂ and variance σ̂², regularised towards ``centre``
    and a variance of ¼ (the largest an outcome in [0, 1] can have) with one observation's
    weight."""
    t = np.arange(1, len(x) + 1)
    means = (centre + np.cumsum(x)) / (t + 1)
    squares = np.cumsum((x - means) ** 2)
    variances = (0.25 + np.concatenate(([0.0], squares[:-1]))) / t  # σ̂²_{t-1}
    return np.sqrt(2 * math.log(2 / alpha) / (variances * t * np.log1p(t)))


def _bet_cap(room: np.ndarray) -> np.ndarray:
    """The largest bet that loses at most ``TRUNCATION`` of the capital when an observation
    lands ``room`` on the losing side of the candidate; no cap when it cannot land there."""
    return np.divide(TRUNCATION, room, out=np.full(room.shape, np.inf), where=room > 0)


def confidence_sequence(
    x: Sequence[float],
    *,
    alpha: float = ALPHA,
    grid: np.ndarray = GRID,
    lower: float | Sequence[float] = 0.0,
    upper: float | Sequence[float] = 1.0,
    centre: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) after each of the observations ``x``: the running intersection of the
    betting CS for their common conditional mean, which ``grid`` spans.

    Observation t lies in [lower_t, upper_t], bounds known before it is drawn (outcomes:
    [0, 1]; the weighted estimates of :mod:`evalhub.analysis.allocation`: wider). Each bet is
    truncated so that no observation within its bounds can take more than ``TRUNCATION`` of
    the capital, which keeps the capital a nonnegative martingale at the true mean. A
    candidate m leaves the sequence for good once its capital has reached 1/α. Computed in
    blocks of observations so that memory stays at a block × grid, whatever the study's size."""
    x = np.asarray(x, dtype=float)
    lower = np.broadcast_to(np.asarray(lower, dtype=float), x.shape)
    upper = np.broadcast_to(np.asarray(upper, dtype=float), x.shape)
    lam = bets(x, alpha, centre)
    m = grid[None, :]
    threshold = math.log(1 / alpha)
    log_up = np.zeros(len(grid))
    log_down = np.zeros(len(grid))
    rejected = np.zeros(len(grid), dtype=bool)
    step = grid[1] - grid[0]
    low, high = np.empty(len(x)), np.empty(len(x))
    running_mean = np.cumsum(x) / np.arange(1, len(x) + 1)
    for start in range(0, len(x), BLOCK):
        diff = x[start : start + BLOCK, None] - m
        block_lam = lam[start : start + BLOCK, None]
        up_cap = _bet_cap(m - lower[start : start + BLOCK, None])
        down_cap = _bet_cap(upper[start : start + BLOCK, None] - m)
        up = np.cumsum(np.log1p(np.minimum(block_lam, up_cap) * diff), axis=0)
        down = np.cumsum(np.log1p(-np.minimum(block_lam, down_cap) * diff), axis=0)
        up += log_up
        down += log_down
        capital = np.logaddexp(up, down) + math.log(0.5)
        out = np.logical_or.accumulate(capital >= threshold, axis=0) | rejected
        inside = ~out
        some = inside.any(axis=1)
        first = inside.argmax(axis=1)
        last = len(grid) - 1 - inside[:, ::-1].argmax(axis=1)
        # The grid point outside the set bounds the true edge: widen by one step to stay valid.
        # Every m rejected can only happen when the sequence has missed (probability ≤ α):
        # the interval shrinks to the running mean rather than vanish.
        rows = slice(start, start + len(diff))
        means = running_mean[rows]
        low[rows] = np.where(some, np.maximum(grid[0] - step, grid[first] - step), means)
        high[rows] = np.where(some, np.minimum(grid[-1] + step, grid[last] + step), means)
        log_up, log_down, rejected = up[-1], down[-1], out[-1]
    return low, high


@dataclass(frozen=True, slots=True)
class Units:
    """Completed comparisons in the order they completed: each one's mean outcome, the number
    of judgments made when it completed, and the rater term V_r = τ̂² Σ w_r² estimated from
    the judgments of the comparisons completed so far."""

    means: np.ndarray
    completed_at: np.ndarray
    rater_term: np.ndarray


def comparison_units(outcomes: Sequence[Outcome], required: Mapping[int, int]) -> Units:
    """Group judgments into comparisons; a comparison counts once it has ``required[item]``
    judgments (its assignments), never earlier, so the rule does not look at outcomes."""
    pending: dict[int, list[Outcome]] = {}
    done: list[list[Outcome]] = []
    completed_at = []
    for index, outcome in enumerate(outcomes, start=1):
        group = pending.setdefault(outcome.item, [])
        group.append(outcome)
        if len(group) >= required.get(outcome.item, 1):
            done.append(pending.pop(outcome.item))
            completed_at.append(index)
    means = np.array([sum(o.value for o in g) / len(g) for g in done])
    return Units(means, np.array(completed_at, dtype=int), rater_variance(done))


def rater_variance(units: Sequence[Sequence[Outcome]]) -> np.ndarray:
    """After each completed comparison, τ̂² Σ w_r²: the variance that the panel's lean adds to
    the mean outcome. τ̂² is the between-rater variance component of a one-way ANOVA by rater
    with unequal group sizes (method of moments, clipped at 0; Searle, Casella & McCulloch,
    *Variance Components*, 1992, §3.6), w_r a rater's share of the judgments."""
    raters = sorted({o.rater for unit in units for o in unit})
    column = {rater: j for j, rater in enumerate(raters)}
    counts = np.zeros((len(units), len(raters)))
    sums = np.zeros_like(counts)
    squares = np.zeros_like(counts)
    for i, unit in enumerate(units):
        for o in unit:
            counts[i, column[o.rater]] += 1
            sums[i, column[o.rater]] += o.value
            squares[i, column[o.rater]] += o.value**2
    n_r, s_r, q_r = (np.cumsum(a, axis=0) for a in (counts, sums, squares))
    total = n_r.sum(axis=1)
    groups = (n_r > 0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rater_means = np.where(n_r > 0, s_r / n_r, 0.0)
        grand = s_r.sum(axis=1) / total
        between = (n_r * (rater_means - grand[:, None]) ** 2).sum(axis=1) / (groups - 1)
        within = (q_r - np.where(n_r > 0, s_r * rater_means, 0.0)).sum(axis=1) / (total - groups)
        k0 = (total - (n_r**2).sum(axis=1) / total) / (groups - 1)
        # An upper confidence limit for E[MS_between] (its (k−1)·MS/E is χ² on k−1 degrees of
        # freedom), so that a panel whose raters happen to agree is not taken as proof of none.
        upper = between * (groups - 1) / chi2.ppf(1 - RATER_CONFIDENCE, groups - 1)
        tau2 = np.maximum(0.0, (upper - within) / k0)
        shares = ((n_r / total[:, None]) ** 2).sum(axis=1)
    usable = (groups >= 2) & (total > groups)
    return np.where(usable, tau2 * shares, 0.0)


def unit_variances(y: np.ndarray) -> np.ndarray:
    """σ̂²_t of the comparison means, regularised as in the bets so that a few identical
    outcomes do not mean no spread."""
    t = np.arange(1, len(y) + 1)
    means = np.cumsum(y) / t
    squares = np.cumsum(y**2) - t * means**2
    return (0.25 + np.maximum(squares, 0.0)) / (t + 1)


def design_effects(units: Units) -> np.ndarray:
    """deff_t = 1 + V_r / (σ̂²_t / t) after each completed comparison."""
    t = np.arange(1, len(units.means) + 1)
    return 1 + units.rater_term * t / unit_variances(units.means)


def clustered_sequence(units: Units, *, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) after each completed comparison: the betting CS on the comparison means,
    each side's distance from the CS's centre stretched by √deff_t, then intersected over
    time."""
    low, high = confidence_sequence(units.means, alpha=alpha)
    stretch = np.sqrt(design_effects(units))
    centre = (low + high) / 2
    low = np.maximum.accumulate(np.maximum(0.0, centre - stretch * (centre - low)))
    high = np.minimum.accumulate(np.minimum(1.0, centre + stretch * (high - centre)))
    # Crossed ends mean the sequence has already missed: collapse to the running mean.
    means = np.cumsum(units.means) / np.arange(1, len(units.means) + 1)
    crossed = low > high
    return np.where(crossed, means, low), np.where(crossed, means, high)


def verdict_of(low: float, high: float, *, margin: float) -> str:
    if low > 0.5:
        return ADAPTER_BETTER
    if high < 0.5:
        return BASE_BETTER
    if margin > 0 and 0.5 - margin < low and high < 0.5 + margin:
        return EQUIVALENT
    return UNDECIDED


def verdicts(low: np.ndarray, high: np.ndarray, *, margin: float) -> tuple[str, int | None]:
    """The verdict after the last observation, and the index of the first that decided one
    (None if none has); undecided with no observation."""
    history = [verdict_of(lo, hi, margin=margin) for lo, hi in zip(low, high, strict=True)]
    decided = next((i for i, v in enumerate(history) if v != UNDECIDED), None)
    return (history[-1] if history else UNDECIDED), decided


def _half_width(n: int, variance: float, alpha: float) -> float:
    """Approximate half-width of a time-uniform interval after n observations: the two-sided
    normal-mixture boundary of Howard et al. 2021 (eq. 14), tuned to be tightest near n."""
    v = n * variance
    rho = v  # the mixture variance that makes the boundary tightest at n
    return math.sqrt((v + rho) * math.log((v + rho) / (rho * (alpha / 2) ** 2))) / n


def units_needed(y: np.ndarray, rater_term: float, *, alpha: float, margin: float) -> int | None:
    """More comparisons needed, if the current estimate, spread and rater term held, until the
    interval clears ½ (or fits inside the margin). None when the estimate is too close to
    either edge, or the raters' lean alone is too uncertain, to say within ``MAX_PROJECTION``.
    ``y`` holds at least one unit."""
    n = len(y)
    estimate = float(y.mean())
    variance = float(unit_variances(y)[-1])
    gap = abs(estimate - 0.5)
    target = max(gap, margin - gap) if margin > 0 else gap
    if target <= 0:
        return None
    total = n + 1
    while total <= n + MAX_PROJECTION:
        stretch = math.sqrt(1 + rater_term * total / variance)
        if _half_width(total, variance, alpha) / MIXTURE_OVER_BETTING * stretch < target:
            return total - n
        total = math.ceil(total * 1.05) + 1
    return None


def monitor(
    outcomes: Sequence[Outcome],
    *,
    required: Mapping[int, int],
    alpha: float = ALPHA,
    margin: float = DEFAULT_MARGIN,
    raters_at_large: bool = False,
) -> Sequential:
    """The interval, verdict and first deciding judgment for the adapter's outcomes in the
    order they were judged; ``required`` is each comparison's number of assignments.

    By default the verdict is about the study's own raters (μ_panel, part 1 above: exact);
    ``raters_at_large`` widens it for the panel's lean (part 2: approximate)."""
    values = np.array([o.value for o in outcomes], dtype=float)
    units = comparison_units(outcomes, required)
    if not raters_at_large:
        units = Units(units.means, units.completed_at, np.zeros_like(units.rater_term))
    count = len(units.means)
    low, high = clustered_sequence(units, alpha=alpha)
    verdict, decided = verdicts(low, high, margin=margin)
    needed = None
    if verdict == UNDECIDED and count:  # without a complete comparison there is no estimate
        more = units_needed(units.means, float(units.rater_term[-1]), alpha=alpha, margin=margin)
        per_unit = sum(required.values()) / len(required) if required else 1.0
        needed = None if more is None else math.ceil(more * per_unit)
    return Sequential(
        verdict=verdict,
        judgments=len(values),
        units=count,
        wins=int((values == 1).sum()),
        losses=int((values == 0).sum()),
        ties=int((values == 0.5).sum()),
        estimate=float(units.means.mean()) if count else None,
        interval=(float(low[-1]), float(high[-1])) if count else (0.0, 1.0),
        rater_design_effect=float(design_effects(units)[-1]) if count else 1.0,
        raters_at_large=raters_at_large,
        alpha=alpha,
        margin=margin,
        decided_at=int(units.completed_at[decided]) if decided is not None else None,
        judgments_needed=needed,
    )
