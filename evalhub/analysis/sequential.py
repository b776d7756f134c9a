"""Anytime-valid monitoring of a win rate: a confidence sequence and a verdict after every
judgment.

Each judgment is one outcome for the adapter: 1 a win, 0 a loss, ½ a tie or "both bad" (the
report's win rate counts them the same way). The win rate μ is the mean outcome.

The confidence sequence is the hedged-capital betting CS of Waudby-Smith & Ramdas,
"Estimating means of bounded random variables by betting", JRSSB 86(1), 2024 (arXiv
2010.09686), §4.2 with the predictable plug-in bets of eq. (26): for each candidate mean m
two gamblers bet that μ > m and that μ < m; their averaged capital
K_t(m) = ½ Π (1 + λ⁺ᵢ(m)(xᵢ − m)) + ½ Π (1 − λ⁻ᵢ(m)(xᵢ − m)) is a nonnegative martingale when
μ = m, so by Ville's inequality P(∃t: K_t(μ) ≥ 1/α) ≤ α. The CS at time t is every m whose
capital never reached 1/α: it misses the truth at *any* time with probability at most α,
however often it is looked at and whenever the study stops. Ties at ½ move no capital at
m = ½ but shrink the variance estimate, so they narrow the interval, as they should.
(`confseq`, the authors' package, does not build on Python 3.11 without Boost, hence this
short version; tests check it against a plain loop of the same formulas and by simulation.)

Verdicts from the interval [low, high] at level α:
- ``adapter_better`` when low > ½; ``base_better`` when high < ½;
- ``equivalent`` when ½ − margin < low and high < ½ + margin (margin > 0);
- ``undecided`` otherwise, with the judgments still needed if the current estimate held.
Each verdict is wrong with probability at most α over the whole study, because it is wrong
only if the sequence ever misses the truth.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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
# "Still needed" is not estimated beyond this many more judgments.
MAX_PROJECTION = 100_000
BLOCK = 256
METHOD = "hedged-capital betting confidence sequence (Waudby-Smith & Ramdas 2024)"
TIES = "ties and both-bad count as half a win"


@dataclass(frozen=True, slots=True)
class Sequential:
    """The monitored state after ``judgments`` judgments of the adapter against the base."""

    verdict: str
    judgments: int
    wins: int
    losses: int
    ties: int
    estimate: float | None
    interval: tuple[float, float]
    alpha: float
    margin: float
    decided_at: int | None
    judgments_needed: int | None
    method: str = METHOD
    ties_handled: str = TIES


def pair_outcomes(ratings: Sequence[Rating], adapter: str, base: str) -> list[float]:
    """The adapter's outcome (1, ½, 0) in each judgment of ``adapter`` against ``base``, in
    the order given (the order they were made); gold items are left out."""
    return [r.outcome_for(adapter) for r in ratings if r.gold is None and r.compares(adapter, base)]


def bets(x: np.ndarray, alpha: float) -> np.ndarray:
    """Predictable plug-in bet sizes λ_t before truncation (WSR eq. 26): λ_t uses only
    x_1..x_{t-1}, through the regularised running mean μ̂ and variance σ̂²."""
    t = np.arange(1, len(x) + 1)
    means = (0.5 + np.cumsum(x)) / (t + 1)
    squares = np.cumsum((x - means) ** 2)
    variances = (0.25 + np.concatenate(([0.0], squares[:-1]))) / t  # σ̂²_{t-1}
    return np.sqrt(2 * math.log(2 / alpha) / (variances * t * np.log1p(t)))


def confidence_sequence(
    x: Sequence[float], *, alpha: float = ALPHA, grid: np.ndarray = GRID
) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) after each judgment: the running intersection of the betting CS.

    A candidate m leaves the sequence for good once its capital has reached 1/α. Computed in
    blocks of judgments so that memory stays at a block × grid, whatever the study's size."""
    x = np.asarray(x, dtype=float)
    lam = bets(x, alpha)
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
        up = np.cumsum(np.log1p(np.minimum(block_lam, TRUNCATION / m) * diff), axis=0)
        down = np.cumsum(np.log1p(-np.minimum(block_lam, TRUNCATION / (1 - m)) * diff), axis=0)
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
        low[rows] = np.where(some, np.maximum(0.0, grid[first] - step), means)
        high[rows] = np.where(some, np.minimum(1.0, grid[last] + step), means)
        log_up, log_down, rejected = up[-1], down[-1], out[-1]
    return low, high


def verdict_of(low: float, high: float, *, margin: float) -> str:
    if low > 0.5:
        return ADAPTER_BETTER
    if high < 0.5:
        return BASE_BETTER
    if margin > 0 and 0.5 - margin < low and high < 0.5 + margin:
        return EQUIVALENT
    return UNDECIDED


def verdicts(x: Sequence[float], *, alpha: float = ALPHA, margin: float) -> list[str]:
    """The verdict after each judgment."""
    low, high = confidence_sequence(x, alpha=alpha)
    return [verdict_of(lo, hi, margin=margin) for lo, hi in zip(low, high, strict=True)]


def _half_width(n: int, variance: float, alpha: float) -> float:
    """Approximate half-width of a time-uniform interval after n judgments: the two-sided
    normal-mixture boundary of Howard et al. 2021 (eq. 14), tuned to be tightest near n."""
    v = n * variance
    rho = v  # the mixture variance that makes the boundary tightest at n
    return math.sqrt((v + rho) * math.log((v + rho) / (rho * (alpha / 2) ** 2))) / n


def judgments_needed(x: Sequence[float], *, alpha: float, margin: float) -> int | None:
    """More judgments needed, if the current estimate and spread held, until the interval
    clears ½ (or fits inside the margin). None when the estimate is too close to either edge
    to say within ``MAX_PROJECTION``."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    estimate = float(x.mean()) if n else 0.5
    # Regularised as in the bets: a few identical outcomes do not mean no spread.
    variance = (0.25 + float(((x - estimate) ** 2).sum())) / (n + 1)
    gap = abs(estimate - 0.5)
    target = max(gap, margin - gap) if margin > 0 else gap
    if target <= 0:
        return None
    total = n + 1
    while total <= n + MAX_PROJECTION:
        if _half_width(total, variance, alpha) < target:
            return total - n
        total = math.ceil(total * 1.05) + 1
    return None


def monitor(
    outcomes: Sequence[float], *, alpha: float = ALPHA, margin: float = DEFAULT_MARGIN
) -> Sequential:
    """The sequence, verdict and first deciding judgment for the adapter's outcomes in the
    order they were judged (1 win, ½ tie, 0 loss)."""
    x = np.asarray(outcomes, dtype=float)
    n = len(x)
    low, high = confidence_sequence(x, alpha=alpha)
    history = [verdict_of(lo, hi, margin=margin) for lo, hi in zip(low, high, strict=True)]
    verdict = history[-1] if n else UNDECIDED
    decided_at = next((i + 1 for i, v in enumerate(history) if v != UNDECIDED), None)
    return Sequential(
        verdict=verdict,
        judgments=n,
        wins=int((x == 1).sum()),
        losses=int((x == 0).sum()),
        ties=int((x == 0.5).sum()),
        estimate=float(x.mean()) if n else None,
        interval=(float(low[-1]), float(high[-1])) if n else (0.0, 1.0),
        alpha=alpha,
        margin=margin,
        decided_at=decided_at,
        judgments_needed=(
            judgments_needed(x, alpha=alpha, margin=margin) if verdict == UNDECIDED else None
        ),
    )
