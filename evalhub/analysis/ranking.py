"""Bradley–Terry strengths for studies of more than two systems, with item-bootstrap intervals
and rank tiers that never claim more than the intervals support.

Strengths are on the log scale and centred (they sum to zero): P(i beats j) =
1 / (1 + exp(θ_j − θ_i)). Ties and "both bad" count as half a win for each side. The fit is
choix's iterative Luce spectral ranking, which converges to the maximum-likelihood estimate; a
tiny regularisation (``REGULARIZATION`` virtual comparisons between every pair) keeps it finite
when, in a bootstrap resample, one system happens to win every time.

Tiers: systems are sorted by strength and systems whose intervals overlap, directly or through a
chain of overlapping intervals, share a tier. Tier 1 is the best.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evalhub.analysis.base import (
    CONFIDENCE,
    MIN_ITEMS,
    REASON_FEW_ITEMS,
    Insufficient,
    Interval,
)
from evalhub.analysis.records import A, B, Rating

BT_RESAMPLES = 500
REGULARIZATION = 0.01
MIN_SYSTEMS = 3
REASON_FEW_SYSTEMS = "Bradley–Terry ranks need more than two systems"
REASON_DISCONNECTED = "the systems are not all linked by comparisons"
REASON_NO_FIT = "the Bradley–Terry fit did not converge"


@dataclass(frozen=True, slots=True)
class SystemStrength:
    system: str
    strength: float
    interval: Interval | Insufficient
    tier: int


@dataclass(frozen=True, slots=True)
class Ranking:
    systems: list[SystemStrength]
    items: int
    judgments: int
    method: str


def win_matrix(ratings: Sequence[Rating], systems: Sequence[str]) -> np.ndarray:
    """m[i, j] = wins of system i over system j, ties and both-bad counting ½ each way."""
    return _item_contributions(ratings, systems)[1].sum(axis=0).reshape(len(systems), -1)


def _item_contributions(
    ratings: Sequence[Rating], systems: Sequence[str]
) -> tuple[list[int], np.ndarray]:
    index = {s: i for i, s in enumerate(systems)}
    size = len(systems)
    rows: dict[int, np.ndarray] = {}
    for r in ratings:
        if r.system_a not in index or r.system_b not in index:
            continue
        i, j = index[r.system_a], index[r.system_b]
        row = rows.setdefault(r.item, np.zeros(size * size))
        if r.verdict == A:
            row[i * size + j] += 1
        elif r.verdict == B:
            row[j * size + i] += 1
        else:
            row[i * size + j] += 0.5
            row[j * size + i] += 0.5
    items = list(rows)
    matrix = np.array([rows[k] for k in items]) if items else np.zeros((0, size * size))
    return items, matrix


def connected(matrix: np.ndarray) -> bool:
    """Whether every system is linked to every other by a chain of comparisons."""
    linked = (matrix + matrix.T) > 0
    seen = {0}
    frontier = [0]
    while frontier:
        node = frontier.pop()
        for other in np.flatnonzero(linked[node]):
            if int(other) not in seen:
                seen.add(int(other))
                frontier.append(int(other))
    return len(seen) == len(matrix)


def bradley_terry(matrix: np.ndarray, *, regularization: float = REGULARIZATION) -> np.ndarray:
    """Centred log-strengths from a win matrix (choix ILSR)."""
    import choix

    params = choix.ilsr_pairwise_dense(np.asarray(matrix, dtype=float), alpha=regularization)
    return params - params.mean()


def rank_tiers(strengths: Sequence[float], intervals: Sequence[tuple[float, float]]) -> list[int]:
    """Tier of each system: overlapping intervals (transitively) share a tier; 1 is best."""
    order = sorted(range(len(strengths)), key=lambda i: -strengths[i])
    tiers = [0] * len(strengths)
    tier, floor = 0, None
    for i in order:
        low, high = intervals[i]
        if floor is None or high < floor:
            tier += 1
            floor = low
        else:
            floor = min(floor, low)
        tiers[i] = tier
    return tiers


def ranking(
    ratings: Sequence[Rating],
    systems: Sequence[str],
    *,
    seed: int = 0,
    resamples: int = BT_RESAMPLES,
    confidence: float = CONFIDENCE,
    regularization: float = REGULARIZATION,
) -> Ranking | Insufficient:
    if len(systems) < MIN_SYSTEMS:
        return Insufficient(REASON_FEW_SYSTEMS, len(systems), MIN_SYSTEMS)
    items, contributions = _item_contributions(ratings, systems)
    if len(items) < MIN_ITEMS:
        return Insufficient(REASON_FEW_ITEMS, len(items), MIN_ITEMS)
    size = len(systems)
    matrix = contributions.sum(axis=0).reshape(size, size)
    if not connected(matrix):
        return Insufficient(REASON_DISCONNECTED, len(items), MIN_ITEMS)
    try:
        point = bradley_terry(matrix, regularization=regularization)
    except RuntimeError:
        return Insufficient(REASON_NO_FIT, len(items), MIN_ITEMS)
    rng = np.random.default_rng(seed)
    k = len(items)
    draws = []
    for _ in range(resamples):
        weights = np.bincount(rng.integers(0, k, size=k), minlength=k).astype(float)
        resampled = (weights @ contributions).reshape(size, size)
        try:
            draws.append(bradley_terry(resampled, regularization=regularization))
        except RuntimeError:
            continue  # a resample the fit cannot handle says nothing about the others
    if not draws:
        return Insufficient(REASON_NO_FIT, len(items), MIN_ITEMS)
    tail = (1 - confidence) / 2 * 100
    bounds = np.percentile(np.array(draws), [tail, 100 - tail], axis=0)
    intervals = [(float(bounds[0, i]), float(bounds[1, i])) for i in range(size)]
    tiers = rank_tiers([float(p) for p in point], intervals)
    ordered = sorted(range(size), key=lambda i: -point[i])
    return Ranking(
        systems=[
            SystemStrength(
                system=systems[i],
                strength=float(point[i]),
                interval=Interval(*intervals[i], "item-clustered bootstrap percentile"),
                tier=tiers[i],
            )
            for i in ordered
        ],
        items=k,
        judgments=round(float(matrix.sum())),
        method="Bradley–Terry (choix ILSR), ties as half wins",
    )
