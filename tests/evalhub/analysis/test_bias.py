import pytest

from evalhub.analysis.base import REASON_FEW_DECISIVE, Insufficient
from evalhub.analysis.bias import length_bias, position_bias
from tests.evalhub.analysis.builders import rating


def test_position_bias_counts_decisive_choices_of_the_left_side():
    # 10 decisive judgments, 9 for the side shown on the left; two ties do not count.
    ratings = [rating(i, "a", left="a") for i in range(5)]
    ratings += [rating(5 + i, "b", left="b") for i in range(4)]
    ratings += [rating(9, "a", left="b"), rating(10, "tie"), rating(11, "both_bad")]
    result = position_bias(ratings)
    assert (result.hits, result.n) == (9, 10)
    assert result.share == pytest.approx(0.9)
    # two-sided exact: 2·(C(10,0) + C(10,1))/2¹⁰ = 22/1024
    assert result.test.p_value == pytest.approx(22 / 1024)


def test_position_bias_needs_ten_decisive_judgments():
    result = position_bias([rating(i, "a") for i in range(9)])
    assert result.share == 1.0
    assert result.test == Insufficient(REASON_FEW_DECISIVE, 9, 10)


def test_length_bias_counts_wins_of_the_longer_output():
    ratings = [rating(i, "a", length_a=200, length_b=50) for i in range(6)]  # longer won
    ratings += [rating(6, "b", length_a=10, length_b=30)]  # longer (b) won
    ratings += [rating(7, "b", length_a=300, length_b=30)]  # shorter won
    ratings += [rating(8, "a", length_a=40, length_b=40)]  # equal: left out
    ratings += [rating(9, "a")]  # unknown length: left out
    ratings += [rating(10, "tie", length_a=1, length_b=9)]  # not decisive
    result = length_bias(ratings)
    assert (result.hits, result.n) == (7, 8)
    assert result.test == Insufficient(REASON_FEW_DECISIVE, 8, 10)
