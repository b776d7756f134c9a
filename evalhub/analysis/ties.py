"""Ties that mean something: Davidson's extension of Bradley–Terry, and "both bad" on its own.

Davidson, R. R. (1970). On extending the Bradley–Terry model to accommodate ties in paired
comparison experiments. JASA 65(329), 317–328. With strengths π = exp(θ) and a tie propensity ν:

    P(i preferred to j) = π_i / (π_i + π_j + ν √(π_i π_j))
    P(no preference)    = ν √(π_i π_j) / (π_i + π_j + ν √(π_i π_j))

A tie is a third outcome with its own probability instead of half a win each way, so many ties
widen the strengths' intervals rather than pulling them to zero. "Tie" and "both bad" both state
no preference and are the model's no-preference outcome; "both bad" is also reported per pair
as its own rate with an interval, an absolute floor that a preference cannot show: a system
preferred in 70 % of the comparisons is no good if most of its answers were judged bad.

The fit is maximum likelihood by Newton's method, every bootstrap resample at once. The model is
log-linear in (θ, log ν), so the log-likelihood is concave and its Hessian is minus the
covariance of the outcome. ``REGULARIZATION`` virtual judgments per pair of systems (one win each
way and one tie, scaled) keep the estimates finite when a resample has no tie or one system wins
every time. Intervals resample whole prompts (every judgment of a prompt, by every rater and of
every pair of systems, stays together), seeded.
"""

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
from evalhub.analysis.ranking import REASON_DISCONNECTED, connected
from evalhub.analysis.records import BOTH_BAD, A, B, Rating

REGULARIZATION = 0.01
MIN_TIE_SYSTEMS = 2
REASON_ONE_SYSTEM = "a paired-comparison model needs two systems"
INTERVAL_METHOD = "prompt-clustered bootstrap percentile"
_NEWTON_STEPS = 60
_TOLERANCE = 1e-10


@dataclass(frozen=True, slots=True)
class TieStrength:
    system: str
    strength: float
    interval: Interval


@dataclass(frozen=True, slots=True)
class TiePair:
    """The model's three outcome probabilities for ``system`` against ``opponent``, and the
    observed share of their judgments that called both answers bad."""

    system: str
    opponent: str
    n: int
    prompts: int
    p_win: float
    p_win_interval: Interval
    p_no_preference: float
    p_no_preference_interval: Interval
    p_loss: float
    both_bad: int
    both_bad_rate: float
    both_bad_interval: Interval


@dataclass(frozen=True, slots=True)
class TieModel:
    systems: list[TieStrength]
    tie_propensity: float
    tie_propensity_interval: Interval
    pairs: list[TiePair]
    prompts: int
    judgments: int
    method: str


def outcome_counts(
    ratings: Sequence[Rating], systems: Sequence[str]
) -> tuple[list[int], np.ndarray]:
    """Per prompt, counts[k, 0, i, j] = wins of i over j, counts[k, 1, i, j] = judgments of i
    against j with no preference and counts[k, 2, i, j] = of those, "both bad" (both
    symmetric). Returns the prompts and the counts (prompts, 3, m, m)."""
    index = {s: i for i, s in enumerate(systems)}
    size = len(systems)
    rows: dict[int, np.ndarray] = {}
    for r in ratings:
        if r.system_a not in index or r.system_b not in index:
            continue
        i, j = index[r.system_a], index[r.system_b]
        row = rows.setdefault(r.cluster, np.zeros((3, size, size)))
        if r.verdict == A:
            row[0, i, j] += 1
        elif r.verdict == B:
            row[0, j, i] += 1
        else:
            row[1, i, j] += 1
            row[1, j, i] += 1
            if r.verdict == BOTH_BAD:
                row[2, i, j] += 1
                row[2, j, i] += 1
    prompts = list(rows)
    counts = np.array([rows[k] for k in prompts]) if prompts else np.zeros((0, 3, size, size))
    return prompts, counts


def _probabilities(theta: np.ndarray, log_nu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """p[b, i, j] = P(i preferred to j), t[b, i, j] = P(no preference), for each row b."""
    half = (theta[:, :, None] - theta[:, None, :]) / 2
    nu = np.exp(log_nu)[:, None, None]
    denominator = 2 * np.cosh(half) + nu
    return np.exp(half) / denominator, nu / denominator


def _log_likelihood(
    theta: np.ndarray, log_nu: np.ndarray, wins: np.ndarray, ties: np.ndarray
) -> np.ndarray:
    p, t = _probabilities(theta, log_nu)
    # Each tie is in both ties[i, j] and ties[j, i]: half of each.
    return (wins * np.log(p)).sum(axis=(1, 2)) + 0.5 * (ties * np.log(t)).sum(axis=(1, 2))


def davidson_fit(
    wins: np.ndarray, ties: np.ndarray, *, regularization: float = REGULARIZATION
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood Davidson fit of a batch of tables: ``wins[b, i, j]`` = wins of i over
    j, ``ties[b]`` symmetric no-preference counts. Returns centred θ (batch, m) and log ν
    (batch,). θ_0 is held at 0 during the fit (the likelihood only sees differences)."""
    wins = np.asarray(wins, dtype=float)
    ties = np.asarray(ties, dtype=float)
    batch, size = wins.shape[0], wins.shape[1]
    off_diagonal = 1 - np.eye(size)
    wins = wins + regularization * off_diagonal
    ties = ties + regularization * off_diagonal
    total = wins + wins.transpose(0, 2, 1) + ties
    theta = np.zeros((batch, size))
    log_nu = np.zeros(batch)
    current = _log_likelihood(theta, log_nu, wins, ties)
    for _ in range(_NEWTON_STEPS):
        p, t = _probabilities(theta, log_nu)
        edge = p - p.transpose(0, 2, 1)  # E[x] where x = +1 (i preferred), −1, 0
        variance = p + p.transpose(0, 2, 1) - edge**2
        gradient = np.concatenate(
            [
                0.5 * (wins - wins.transpose(0, 2, 1) - total * edge).sum(axis=2),
                (0.5 * (ties - total * t).sum(axis=(1, 2)))[:, None],
            ],
            axis=1,
        )
        # Fisher information = −Hessian: a Laplacian for θ, the tie indicator's variance for
        # log ν, and their covariance between.
        weights = 0.25 * total * variance
        information = np.zeros((batch, size + 1, size + 1))
        information[:, :size, :size] = -weights
        diagonal = np.arange(size)
        information[:, diagonal, diagonal] = weights.sum(axis=2)
        cross = -0.5 * (total * edge * t).sum(axis=2)
        information[:, :size, size] = cross
        information[:, size, :size] = cross
        information[:, size, size] = 0.5 * (total * t * (1 - t)).sum(axis=(1, 2))
        free = gradient[:, 1:]
        if np.abs(free).max() < _TOLERANCE:
            break
        step = np.linalg.solve(information[:, 1:, 1:], free[:, :, None])[:, :, 0]
        scale = np.ones(batch)
        for _ in range(30):  # halve the step where it would lower the likelihood
            trial_theta = theta.copy()
            trial_theta[:, 1:] += scale[:, None] * step[:, :-1]
            trial_nu = log_nu + scale * step[:, -1]
            trial = _log_likelihood(trial_theta, trial_nu, wins, ties)
            worse = ~(trial >= current - 1e-12)
            if not worse.any():
                break
            scale = np.where(worse, scale / 2, scale)
        theta, log_nu, current = trial_theta, trial_nu, trial
    return theta - theta.mean(axis=1, keepdims=True), log_nu


def _percentile(draws: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail], axis=0)
    return low, high


def tie_model(
    ratings: Sequence[Rating],
    systems: Sequence[str],
    pairs: Sequence[tuple[str, str]],
    *,
    seed: int = 0,
    resamples: int = MODEL_RESAMPLES,
    confidence: float = CONFIDENCE,
    regularization: float = REGULARIZATION,
) -> TieModel | Insufficient:
    """Davidson strengths of ``systems`` and, for each (system, opponent) of ``pairs``, the
    model's outcome probabilities and the both-bad rate, with prompt-clustered intervals."""
    if len(systems) < MIN_TIE_SYSTEMS:
        return Insufficient(REASON_ONE_SYSTEM, len(systems), MIN_TIE_SYSTEMS)
    prompts, counts = outcome_counts(ratings, systems)
    k = len(prompts)
    if k < MIN_ITEMS:
        return Insufficient(REASON_FEW_ITEMS, k, MIN_ITEMS)
    totals = counts.sum(axis=0)
    if not connected(totals[0] + totals[1]):
        return Insufficient(REASON_DISCONNECTED, k, MIN_ITEMS)
    blocks = [np.ones((1, k)), *resample_counts(k, resamples, seed=seed)]
    # (1 + resamples, 3, m, m): row 0 is the data itself, the others its resamples
    tables = np.concatenate([np.tensordot(weights, counts, axes=1) for weights in blocks])
    theta, log_nu = davidson_fit(tables[:, 0], tables[:, 1], regularization=regularization)
    p, t = _probabilities(theta, log_nu)
    index = {s: i for i, s in enumerate(systems)}

    def interval(values: np.ndarray) -> Interval:
        """Over the resamples (row 0 is the data), leaving out those without the pair."""
        draws = values[1:]
        low, high = _percentile(draws[np.isfinite(draws)], confidence)
        return Interval(float(low), float(high), INTERVAL_METHOD)

    pair_rows = []
    for system, opponent in pairs:
        i, j = index[system], index[opponent]
        judged = tables[:, 0, i, j] + tables[:, 0, j, i] + tables[:, 1, i, j]
        seen = counts[:, 0, i, j] + counts[:, 0, j, i] + counts[:, 1, i, j] > 0
        if judged[0] == 0:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            both_bad = tables[:, 2, i, j] / judged
        pair_rows.append(
            TiePair(
                system=system,
                opponent=opponent,
                n=round(judged[0]),
                prompts=int(seen.sum()),
                p_win=float(p[0, i, j]),
                p_win_interval=interval(p[:, i, j]),
                p_no_preference=float(t[0, i, j]),
                p_no_preference_interval=interval(t[:, i, j]),
                p_loss=float(p[0, j, i]),
                both_bad=round(tables[0, 2, i, j]),
                both_bad_rate=float(both_bad[0]),
                both_bad_interval=interval(both_bad),
            )
        )
    order = sorted(range(len(systems)), key=lambda i: -theta[0, i])
    return TieModel(
        systems=[TieStrength(systems[i], float(theta[0, i]), interval(theta[:, i])) for i in order],
        tie_propensity=float(np.exp(log_nu[0])),
        tie_propensity_interval=interval(np.exp(log_nu)),
        pairs=pair_rows,
        prompts=k,
        judgments=round(float(totals[0].sum() + totals[1].sum() / 2)),
        method="Davidson (1970) Bradley–Terry with ties, maximum likelihood (Newton)",
    )
