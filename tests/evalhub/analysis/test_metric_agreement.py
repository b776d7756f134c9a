import itertools

import pytest

from evalhub.analysis.base import REASON_FEW_ITEMS, REASON_NO_VARIATION, Insufficient
from evalhub.analysis.metric_agreement import human_preferences, metric_agreement
from tests.evalhub.analysis.builders import rating


def _kendall_tau_b_by_counting(x, y):
    """Reference: count concordant and discordant pairs and the pairs tied in x or y only."""
    concordant = discordant = tied_x = tied_y = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = x[i] - x[j], y[i] - y[j]
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            tied_x += 1
        elif dy == 0:
            tied_y += 1
        elif dx * dy > 0:
            concordant += 1
        else:
            discordant += 1
    return (concordant - discordant) / (
        ((concordant + discordant + tied_x) * (concordant + discordant + tied_y)) ** 0.5
    )


# 12 items, two raters each. Per item: (verdicts, rouge of a, rouge of b).
ITEMS = [
    (("a", "a"), 0.9, 0.1),  # human +½, majority a, metric +0.8: match
    (("a", "a"), 0.6, 0.5),  # +½, a, +0.1: match
    (("a", "tie"), 0.5, 0.4),  # +¼, split: no majority
    (("b", "b"), 0.2, 0.7),  # −½, b, −0.5: match
    (("b", "b"), 0.8, 0.2),  # −½, b, +0.6: MISS (confident experts, large metric gap)
    (("b", "b"), 0.45, 0.4),  # −½, b, +0.05: MISS (confident, small gap)
    (("a", "a"), 0.3, 0.6),  # +½, a, −0.3: MISS
    (("a", "b"), 0.5, 0.2),  # 0, split
    (("tie", "tie"), 0.1, 0.3),  # 0, majority tie: not matched
    (("a", "a"), 0.7, 0.7),  # +½, a, 0: metric has no preference, not matched
    (("b", "b"), 0.1, 0.9),  # −½, b, −0.8: match
    (("a", "a"), 0.95, 0.05),  # +½, a, +0.9: match
]


def _ratings():
    return [
        rating(item, verdict, rater=f"r{k}")
        for item, (verdicts, _, _) in enumerate(ITEMS)
        for k, verdict in enumerate(verdicts)
    ]


def _values():
    return {item: (a, b) for item, (_, a, b) in enumerate(ITEMS)}


def test_human_preference_is_mean_outcome_for_a_minus_a_half():
    prefs = human_preferences(_ratings())
    assert prefs[0] == (0.5, "a", 2)
    assert prefs[2] == (0.25, None, 2)
    assert prefs[3] == (-0.5, "b", 2)
    assert prefs[8] == (0.0, "tie", 2)


def test_match_share_counts_items_with_a_decisive_majority_and_a_metric_preference():
    result = metric_agreement(_ratings(), _values(), "rouge1")
    # decided items: 0, 1, 3, 4, 5, 6, 10, 11 → matches 0, 1, 3, 10, 11 = 5 of 8 … but 8 < 10
    assert result.match == Insufficient(REASON_FEW_ITEMS, 8, 10)
    assert result.items == 12


def test_match_share_with_enough_items():
    ratings = _ratings() + [rating(20 + i, "a") for i in range(4)]
    values = _values() | {20 + i: (0.9, 0.1) for i in range(4)}
    result = metric_agreement(ratings, values, "rouge1")
    # the 8 decided items above plus 4 matching ones: 9 of 12
    assert (result.match.hits, result.match.n) == (9, 12)
    assert result.match.value == pytest.approx(0.75)


def test_kendall_tau_matches_pair_counting():
    result = metric_agreement(_ratings(), _values(), "rouge1")
    x = [a - b for _, a, b in ITEMS]
    y = [p for p, _, _ in (human_preferences(_ratings())[i] for i in range(len(ITEMS)))]
    assert result.kendall_tau.statistic == pytest.approx(_kendall_tau_b_by_counting(x, y))
    assert result.kendall_tau.n == 12


def test_disagreements_list_confident_experts_and_large_metric_gaps_first():
    result = metric_agreement(_ratings(), _values(), "rouge1")
    # misses: item 4 (|h| ½, |d| 0.6), item 6 (½, 0.3), item 5 (½, 0.05)
    assert [p.item for p in result.disagreements] == [4, 6, 5]
    assert result.disagreements[0].difference == pytest.approx(0.6)


def test_items_without_the_metric_are_left_out_and_constant_metrics_give_no_tau():
    values = {item: (0.5, 0.5) for item in range(12)}
    values[3] = (None, 0.2)
    result = metric_agreement(_ratings(), values, "bertscore_f1")
    assert result.items == 11
    assert result.kendall_tau.reason == REASON_NO_VARIATION


def test_scatter_points_are_thinned_evenly():
    ratings = [rating(i, "a") for i in range(50)]
    values = {i: (i / 50, 0.0) for i in range(50)}
    result = metric_agreement(ratings, values, "rouge1", scatter_points=10)
    assert [p[2] for p in result.points] == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45]
    assert result.points_total == 50
