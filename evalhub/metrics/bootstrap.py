"""Percentile bootstrap intervals for a mean and for a paired mean difference (numpy, seeded)."""

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

BAD_CONFIDENCE = "confidence must be in (0, 1), got {value}"
UNPAIRED = "paired samples differ in length: {a} vs {b}"
# Resampling indices are drawn in chunks so memory stays bounded for thousands of prompts.
_CHUNK_CELLS = 2_000_000


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def bootstrap_mean(
    values: Sequence[float],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval | None:
    """The sample mean with a percentile bootstrap interval; None for an empty sample."""
    if not 0 < confidence < 1:
        raise ValueError(BAD_CONFIDENCE.format(value=confidence))
    data = np.asarray(values, dtype=float)
    n = data.size
    if n == 0:
        return None
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_CELLS // n)
    means = []
    remaining = n_resamples
    while remaining > 0:
        size = min(per_chunk, remaining)
        means.append(data[rng.integers(0, n, size=(size, n))].mean(axis=1))
        remaining -= size
    resampled = np.concatenate(means)
    tail = (1 - confidence) / 2
    low, high = np.quantile(resampled, [tail, 1 - tail])
    return Interval(mean=float(data.mean()), low=float(low), high=float(high), n=n)


def bootstrap_paired_difference(
    a: Sequence[float],
    b: Sequence[float],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval | None:
    """Mean of a − b over paired items (the same prompts), resampling items, not systems: the
    pairing removes the prompt-to-prompt variance that two separate intervals would keep."""
    if len(a) != len(b):
        raise ValueError(UNPAIRED.format(a=len(a), b=len(b)))
    differences = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return bootstrap_mean(differences, n_resamples=n_resamples, confidence=confidence, seed=seed)
