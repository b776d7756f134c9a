import pytest

from evalhub.analysis.base import REASON_FEW_ITEMS, Insufficient
from evalhub.analysis.criteria import criterion_summary, wilcoxon_signed_rank
from tests.evalhub.analysis.builders import rating


def test_wilcoxon_all_positive_differences_by_hand():
    # n = 10 nonzero differences, all positive: W− = 0. Under H0 each of the 2¹⁰ sign patterns
    # is equally likely and only one gives W− = 0, so the two-sided exact p = 2/1024.
    result = wilcoxon_signed_rank([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert result.statistic == 0
    assert result.p_value == pytest.approx(2 / 1024)


def test_wilcoxon_mixed_signs_by_hand():
    # |d| ranks 1..10; the negatives have ranks 1 and 4, so W− = 5. Subsets of {1..10} whose
    # sum is ≤ 5: {}, {1}, {2}, {3}, {1,2}, {4}, {1,3}, {5}, {1,4}, {2,3} = 10 of 1024.
    # Two-sided p = 2·10/1024.
    result = wilcoxon_signed_rank([-1, 2, 3, -4, 5, 6, 7, 8, 9, 10])
    assert result.statistic == 5
    assert result.p_value == pytest.approx(20 / 1024)


def test_wilcoxon_with_tied_differences_uses_the_tie_corrected_normal_approximation():
    # ten differences of +1: all |d| tied at rank 5.5, W− = 0.
    # mean = n(n+1)/4 = 27.5; var = n(n+1)(2n+1)/24 − Σ(t³ − t)/48 = 96.25 − 990/48 = 75.625
    # z = −27.5/√75.625 = −3.16228; p = 2·Φ(−3.16228) = 0.0015654
    result = wilcoxon_signed_rank([1.0] * 10)
    assert result.p_value == pytest.approx(0.0015654, abs=1e-6)
    assert "normal approximation" in result.method


def test_wilcoxon_needs_ten_items():
    assert wilcoxon_signed_rank([1.0] * 9) == Insufficient(REASON_FEW_ITEMS, 9, 10)


def test_criterion_summary_means_and_per_item_wilcoxon():
    ratings = []
    for item in range(10):
        # two raters per item; the adapter is output b on odd items
        for rater, (mine, theirs) in (("r1", (4, 2)), ("r2", (5, 4))):
            if item % 2:
                scores = {"correctness": (theirs, mine)}
                sides = {"system_a": "base", "system_b": "adapter"}
            else:
                scores = {"correctness": (mine, theirs)}
                sides = {}
            ratings.append(rating(item, "a", rater=rater, scores=scores, **sides))
    summary = criterion_summary(ratings, "correctness", "adapter", "base", resamples=300)
    # adapter: (4 + 5)/2 = 4.5, base: (2 + 4)/2 = 3, difference 1.5 on every item
    assert summary.n == 20 and summary.items == 10
    assert summary.mean_system == pytest.approx(4.5)
    assert summary.mean_opponent == pytest.approx(3.0)
    assert summary.mean_difference == pytest.approx(1.5)
    # every item's mean difference is 1.5, so every resample gives exactly 1.5
    assert (summary.interval.low, summary.interval.high) == pytest.approx((1.5, 1.5))
    # ten items, all positive (ties among |d| share a rank): W− = 0, two-sided p = 2/1024
    assert summary.wilcoxon.n == 10
    assert summary.wilcoxon.statistic == 0


def test_criterion_summary_skips_judgments_without_scores():
    ratings = [rating(0, "a", scores={"style": (3, 3)}), rating(1, "a")]
    summary = criterion_summary(ratings, "style", "adapter", "base")
    assert summary.n == 1 and summary.mean_difference == 0
    assert summary.interval == Insufficient(REASON_FEW_ITEMS, 1, 10)
