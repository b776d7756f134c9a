"""The win rate with the reviewers' final calls, against values worked out by hand."""

import pytest

from evalhub.analysis.adjudication import adjudication_summary
from evalhub.analysis.records import Rating


def rating(item, verdict, rater="r1", a="tuned", b="base", gold=None):
    return Rating(item=item, rater=rater, system_a=a, system_b=b, verdict=verdict, gold=gold)


RATINGS = [
    rating(1, "a", "r1"),  # split: ½ for tuned, settled below for tuned
    rating(1, "b", "r2"),
    rating(2, "a", "r1"),  # agreed: 1
    rating(2, "a", "r2"),
    rating(3, "tie", "r1"),  # tie: ½
    # 4: every rater skipped, so no raters' outcome; settled below for base
    rating(5, "b", "r1", a="base", b="tuned"),  # stored the other way round: a win for tuned
    rating(9, "a", "r1", gold="a"),  # gold: never counted
]
CALLS = [
    rating(1, "a", "final call"),
    rating(4, "b", "final call"),
    rating(9, "b", "final call", gold="a"),
]


def test_each_comparison_counts_once_by_its_final_call_or_its_raters_mean():
    summary = adjudication_summary(RATINGS, CALLS, [("tuned", "base")])
    (pair,) = summary.pairs
    assert summary.adjudicated == 2
    assert (pair.items, pair.items_adjudicated, pair.adjudicated) == (4, 5, 2)
    # Without: items 1, 2, 3, 5 → (½ + 1 + ½ + 1) / 4.
    assert pair.win_rate == pytest.approx(3 / 4)
    # With: item 1 becomes 1, item 4 joins as 0 → (1 + 1 + ½ + 0 + 1) / 5.
    assert pair.win_rate_adjudicated == pytest.approx(3.5 / 5)


def test_the_opponents_side_reads_as_the_complement():
    (pair,) = adjudication_summary(RATINGS, CALLS, [("base", "tuned")]).pairs
    assert pair.win_rate == pytest.approx(1 / 4)
    assert pair.win_rate_adjudicated == pytest.approx(1.5 / 5)


def test_without_final_calls_both_win_rates_are_the_raters():
    (pair,) = adjudication_summary(RATINGS, [], [("tuned", "base")]).pairs
    assert pair.adjudicated == 0
    assert pair.win_rate == pair.win_rate_adjudicated == pytest.approx(3 / 4)


def test_a_pair_nobody_judged_has_no_win_rate():
    (pair,) = adjudication_summary([], [], [("tuned", "base")]).pairs
    assert (pair.items, pair.win_rate, pair.win_rate_adjudicated) == (0, None, None)
