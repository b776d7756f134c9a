import numpy as np
import pytest

from evalhub.analysis.base import Insufficient
from evalhub.analysis.ranking import (
    REASON_DISCONNECTED,
    REASON_FEW_SYSTEMS,
    bradley_terry,
    rank_tiers,
    ranking,
    win_matrix,
)
from tests.evalhub.analysis.builders import rating

SYSTEMS = ["adapter", "base", "reference"]


def _mm_bradley_terry(wins: np.ndarray, iterations: int = 5000) -> np.ndarray:
    """Hunter's (2004) minorisation–maximisation updates for the Bradley–Terry likelihood:
    w_i ← W_i / Σ_j n_ij / (w_i + w_j), with W_i the wins of i and n_ij the games of i vs j."""
    games = wins + wins.T
    w = np.ones(len(wins))
    for _ in range(iterations):
        for i in range(len(w)):
            denominator = sum(games[i, j] / (w[i] + w[j]) for j in range(len(w)) if j != i)
            w[i] = wins[i].sum() / denominator
        w /= w.sum()
    theta = np.log(w)
    return theta - theta.mean()


VERDICT = {"A": "a", "B": "b", "T": "tie"}


def _study(outcomes: dict[tuple[str, str], str]) -> list:
    """outcomes[(x, y)] is a string of verdicts (A, B, T), one item each, x stored as output a."""
    ratings = []
    for (x, y), verdicts in outcomes.items():
        for v in verdicts:
            ratings.append(rating(len(ratings), VERDICT[v], system_a=x, system_b=y))
    return ratings


OUTCOMES = {
    ("adapter", "base"): "AAAAAAABBBT",
    ("adapter", "reference"): "AAABBBBBT",
    ("base", "reference"): "ABBBBBBBBA",
}


def test_win_matrix_counts_ties_as_half_wins():
    matrix = win_matrix(_study(OUTCOMES), SYSTEMS)
    # adapter–base: 7 A, 3 B, 1 tie → 7.5 and 3.5
    assert matrix[0, 1] == 7.5 and matrix[1, 0] == 3.5
    assert matrix[2, 1] == 8 and matrix[1, 2] == 2


def test_bradley_terry_matches_the_mm_algorithm():
    matrix = win_matrix(_study(OUTCOMES), SYSTEMS)
    expected = _mm_bradley_terry(matrix)
    assert bradley_terry(matrix, regularization=0.0) == pytest.approx(expected, abs=1e-6)
    # the default regularisation (0.01 virtual games per pair) moves it only a little
    assert bradley_terry(matrix) == pytest.approx(expected, abs=0.01)


def test_ranking_orders_systems_with_intervals_around_the_estimate():
    result = ranking(_study(OUTCOMES), SYSTEMS, resamples=200)
    names = [s.system for s in result.systems]
    strengths = [s.strength for s in result.systems]
    assert strengths == sorted(strengths, reverse=True)
    expected = dict(
        zip(SYSTEMS, _mm_bradley_terry(win_matrix(_study(OUTCOMES), SYSTEMS)), strict=True)
    )
    assert names == sorted(expected, key=expected.get, reverse=True)
    for s in result.systems:
        assert s.interval.low <= s.strength <= s.interval.high
    assert result.items == 30 and result.judgments == 30


def test_rank_tiers_share_a_tier_when_intervals_overlap_even_through_a_chain():
    # A [2, 4] overlaps B [1, 3], B overlaps C [0, 1.5]; D [-3, -1] overlaps none of them.
    tiers = rank_tiers([3.0, 2.0, 0.7, -2.0], [(2, 4), (1, 3), (0, 1.5), (-3, -1)])
    assert tiers == [1, 1, 1, 2]
    assert rank_tiers([1.0, 0.0, -1.0], [(0.5, 1.5), (-0.4, 0.4), (-1.5, -0.5)]) == [1, 2, 3]


def test_ranking_refuses_two_systems_and_disconnected_designs():
    two = ranking(_study({("adapter", "base"): "A" * 12}), ["adapter", "base"])
    assert two == Insufficient(REASON_FEW_SYSTEMS, 2, 3)
    split = _study({("adapter", "base"): "AB" * 6})
    result = ranking(split, SYSTEMS)
    assert isinstance(result, Insufficient) and result.reason == REASON_DISCONNECTED
