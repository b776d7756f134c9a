"""The betting confidence sequence: coverage by seeded simulation, a plain loop of the paper's
formulas as an independent computation, and the verdicts."""

import math

import numpy as np
import pytest

from evalhub.analysis.records import Rating
from evalhub.analysis.sequential import (
    ADAPTER_BETTER,
    BASE_BETTER,
    EQUIVALENT,
    GRID,
    UNDECIDED,
    bets,
    confidence_sequence,
    monitor,
    pair_outcomes,
    verdict_of,
)

ALPHA = 0.05


def capital_loop(x, m, alpha=ALPHA):
    """Waudby-Smith & Ramdas hedged capital at m, one judgment at a time, from the paper."""
    up = down = 1.0
    total = squares = 0.0
    out = []
    for t, value in enumerate(x, start=1):
        variance = (0.25 + squares) / t
        lam = math.sqrt(2 * math.log(2 / alpha) / (variance * t * math.log(1 + t)))
        up *= 1 + min(lam, 0.5 / m) * (value - m)
        down *= 1 - min(lam, 0.5 / (1 - m)) * (value - m)
        out.append(0.5 * up + 0.5 * down)
        total += value
        squares += (value - (0.5 + total) / (t + 1)) ** 2
    return out


def misses_truth(x: np.ndarray, truth: float) -> np.ndarray:
    """For many sequences at once (rows): does the CS ever exclude ``truth``?"""
    lam = np.vstack([bets(row, ALPHA) for row in x])
    up = np.cumsum(np.log1p(np.minimum(lam, 0.5 / truth) * (x - truth)), axis=1)
    down = np.cumsum(np.log1p(-np.minimum(lam, 0.5 / (1 - truth)) * (x - truth)), axis=1)
    return ((np.logaddexp(up, down) + math.log(0.5)) >= math.log(1 / ALPHA)).any(axis=1)


@pytest.mark.parametrize(
    ("truth", "probabilities"), [(0.5, [0.4, 0.2, 0.4]), (0.6, [0.3, 0.2, 0.5])]
)
def test_the_sequence_misses_the_truth_at_any_time_in_at_most_alpha_of_studies(
    truth, probabilities
):
    rng = np.random.default_rng(2026)
    x = rng.choice([0.0, 0.5, 1.0], p=probabilities, size=(1000, 400))
    assert misses_truth(x, truth).mean() <= ALPHA


def test_two_hundred_fair_coin_studies_read_after_every_judgment():
    rng = np.random.default_rng(16)
    missed = 0
    for _ in range(200):
        low, high = confidence_sequence(rng.integers(0, 2, 300).astype(float))
        missed += bool(((low > 0.5) | (high < 0.5)).any())
    assert missed / 200 <= ALPHA


def test_the_vectorised_sequence_agrees_with_a_plain_loop_of_the_formulas():
    rng = np.random.default_rng(5)
    x = rng.choice([0.0, 0.5, 1.0], p=[0.3, 0.2, 0.5], size=120)
    low, high = confidence_sequence(x)
    for m in (0.3, 0.45, 0.5, 0.55, 0.62, 0.8):
        ever_rejected = np.maximum.accumulate(np.array(capital_loop(x, m))) >= 1 / ALPHA
        inside = (low <= m) & (m <= high)
        # Outside the hull means rejected; a rejected m never comes back.
        assert not (~inside & ~ever_rejected).any(), m
    step = GRID[1] - GRID[0]
    for t in (10, 60, 119):
        kept = [m for m in GRID if max(capital_loop(x[: t + 1], m)) < 1 / ALPHA]
        assert low[t] == pytest.approx(max(0, min(kept) - step))
        assert high[t] == pytest.approx(min(1, max(kept) + step))


def test_the_sequence_is_nested_and_wider_than_a_fixed_sample_interval():
    rng = np.random.default_rng(9)
    x = rng.choice([0.0, 0.5, 1.0], p=[0.3, 0.2, 0.5], size=400)
    low, high = confidence_sequence(x)
    assert (np.diff(low) >= 0).all() and (np.diff(high) <= 0).all()
    n = np.arange(1, 401)
    means = np.cumsum(x) / n
    wald = 1.96 * np.sqrt(0.25 / n)
    assert ((high - low)[20:] > 2 * wald[20:] * 0.9).all()
    assert ((low <= means) & (means <= high)).all()


def test_verdicts_read_the_interval_against_half_and_the_margin():
    assert verdict_of(0.52, 0.7, margin=0.05) == ADAPTER_BETTER
    assert verdict_of(0.3, 0.49, margin=0.05) == BASE_BETTER
    assert verdict_of(0.46, 0.54, margin=0.05) == EQUIVALENT
    assert verdict_of(0.46, 0.54, margin=0.0) == UNDECIDED
    assert verdict_of(0.44, 0.54, margin=0.05) == UNDECIDED


def test_a_clear_winner_is_decided_and_an_even_match_estimates_what_is_left():
    rng = np.random.default_rng(1)
    strong = monitor(rng.choice([0.0, 0.5, 1.0], p=[0.15, 0.2, 0.65], size=300))
    assert strong.verdict == ADAPTER_BETTER
    assert strong.decided_at is not None and strong.decided_at < 300
    assert strong.judgments_needed is None
    even = monitor(rng.choice([0.0, 0.5, 1.0], p=[0.35, 0.2, 0.45], size=40))
    assert even.verdict == UNDECIDED
    assert even.judgments_needed is not None and even.judgments_needed > 0
    empty = monitor([])
    assert (empty.verdict, empty.judgments, empty.estimate) == (UNDECIDED, 0, None)


def test_outcomes_follow_the_adapter_whichever_side_it_was_stored_on():
    ratings = [
        Rating(1, "r", "adapter", "base", "a"),
        Rating(2, "r", "base", "adapter", "a"),
        Rating(3, "r", "adapter", "base", "tie"),
        Rating(4, "r", "adapter", "base", "both_bad"),
        Rating(5, "r", "adapter", "other", "a"),
        Rating(6, "r", "adapter", "base", "a", gold="a"),
    ]
    assert pair_outcomes(ratings, "adapter", "base") == [1.0, 0.0, 0.5, 0.5]
