import math

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from evalhub.analysis.base import (
    MIN_JUDGMENTS,
    REASON_FEW_DECISIVE,
    REASON_FEW_ITEMS,
    REASON_FEW_JUDGMENTS,
    Insufficient,
    clustered_bootstrap,
)
from evalhub.analysis.winrate import pair_summary, sign_test, wilson_interval
from tests.evalhub.analysis.builders import one_per_item, rating


@pytest.mark.parametrize(("successes", "n"), [(7, 10), (12.5, 20), (0, 15), (15, 15), (61, 97)])
def test_wilson_interval_matches_statsmodels(successes, n):
    low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
    interval = wilson_interval(successes, n)
    assert interval.low == pytest.approx(low, abs=1e-12)
    assert interval.high == pytest.approx(high, abs=1e-12)


def test_wilson_interval_of_eight_in_ten_by_hand():
    # p = 0.8, z = 1.9599640, z² = 3.8414588; denominator = 1 + z²/n = 1.3841459
    # centre = (0.8 + z²/20) / 1.3841459 = 0.9920729 / 1.3841459 = 0.7167402
    # half = z·sqrt(0.8·0.2/10 + z²/400) / 1.3841459 = 1.9599640·0.1600114 / 1.3841459 = 0.2265777
    # interval = [0.4901625, 0.9433179]
    interval = wilson_interval(8, 10)
    assert interval.low == pytest.approx(0.4901625, abs=1e-6)
    assert interval.high == pytest.approx(0.9433179, abs=1e-6)


def test_wilson_interval_refuses_fewer_than_the_minimum_judgments():
    result = wilson_interval(3, MIN_JUDGMENTS - 1)
    assert result == Insufficient(REASON_FEW_JUDGMENTS, MIN_JUDGMENTS - 1, MIN_JUDGMENTS)


def test_sign_test_nine_wins_one_loss_by_hand():
    # P(X ≤ 1 | n=10, ½) = (C(10,0) + C(10,1)) / 2¹⁰ = 11/1024; two-sided doubles it.
    result = sign_test(9, 1)
    assert result.p_value == pytest.approx(22 / 1024, rel=1e-12)
    assert result.n == 10


def test_sign_test_balanced_outcome_has_p_one():
    assert sign_test(6, 6).p_value == pytest.approx(1.0)


def test_sign_test_needs_ten_decisive_judgments():
    assert sign_test(8, 1) == Insufficient(REASON_FEW_DECISIVE, 9, 10)


def test_pair_summary_counts_ties_and_both_bad_as_half_wins():
    # adapter (output a) wins 6, loses 2, 1 tie, 1 both bad: (6 + ½·2) / 10 = 0.7
    verdicts = ["a"] * 6 + ["b"] * 2 + ["tie", "both_bad"]
    summary = pair_summary(one_per_item(verdicts), "adapter", "base")
    assert (summary.wins, summary.losses, summary.ties, summary.both_bad) == (6, 2, 1, 1)
    assert summary.win_rate == pytest.approx(0.7)
    assert summary.tie_rate == pytest.approx(0.1)
    assert summary.both_bad_rate == pytest.approx(0.1)
    low, high = proportion_confint(7, 10, method="wilson")
    assert (summary.wilson.low, summary.wilson.high) == pytest.approx((low, high))
    # only 8 decisive judgments: no test
    assert summary.sign_test == Insufficient(REASON_FEW_DECISIVE, 8, 10)


def test_pair_summary_follows_the_system_whichever_side_it_is_stored_on():
    stored_a = one_per_item(["a"] * 3 + ["b"])
    stored_b = [
        rating(10 + i, v, system_a="base", system_b="adapter") for i, v in enumerate("bbba")
    ]
    summary = pair_summary(stored_a + stored_b, "adapter", "base")
    assert (summary.wins, summary.losses) == (6, 2)
    assert pair_summary(stored_a + stored_b, "base", "adapter").win_rate == pytest.approx(0.25)


def test_pair_summary_ignores_other_pairs():
    other = [rating(99, "a", system_a="adapter", system_b="reference")]
    assert pair_summary(one_per_item(["a", "b"]) + other, "adapter", "base").n == 2


def _naive_clustered_bootstrap(items: dict[int, list[float]], resamples: int, seed: int):
    """Reference: draw k whole items with replacement, pool their judgments, take the mean.
    The draws come from the same generator calls, so the two must agree exactly."""
    rng = np.random.default_rng(seed)
    keys = list(items)
    k = len(keys)
    means = []
    while len(means) < resamples:
        for draw in rng.integers(0, k, size=(min(resamples - len(means), 2_000_000 // k), k)):
            pooled = [x for index in draw for x in items[keys[index]]]
            means.append(sum(pooled) / len(pooled))
    return np.percentile(means, [2.5, 97.5])


def test_clustered_bootstrap_equals_resampling_items_by_hand():
    rng = np.random.default_rng(7)
    items = {i: list(rng.choice([0.0, 0.5, 1.0], size=rng.integers(1, 4))) for i in range(30)}
    sums = np.array([sum(v) for v in items.values()])
    counts = np.array([len(v) for v in items.values()])
    interval = clustered_bootstrap(sums, counts, resamples=500, seed=3)
    low, high = _naive_clustered_bootstrap(items, 500, 3)
    assert (interval.low, interval.high) == pytest.approx((low, high))


def test_identical_raters_on_an_item_do_not_narrow_the_bootstrap_interval():
    # Four raters who always agree carry the information of one: clustering keeps the interval
    # exactly as wide as with one rater per item, where the Wilson interval halves.
    verdicts = ["a"] * 14 + ["b"] * 6
    single = one_per_item(verdicts)
    copies = [rating(i, v, rater=f"r{k}") for i, v in enumerate(verdicts) for k in range(4)]
    one = pair_summary(single, "adapter", "base", resamples=400)
    four = pair_summary(copies, "adapter", "base", resamples=400)
    assert (four.bootstrap.low, four.bootstrap.high) == (one.bootstrap.low, one.bootstrap.high)
    wilson_width = four.wilson.high - four.wilson.low
    assert wilson_width < 0.6 * (one.wilson.high - one.wilson.low)


def test_bootstrap_interval_of_independent_items_is_close_to_the_normal_interval():
    # 200 items, 120 wins: normal approximation 0.6 ± 1.96·sqrt(0.24/200) = 0.6 ± 0.0679
    summary = pair_summary(one_per_item(["a"] * 120 + ["b"] * 80), "adapter", "base")
    half = 1.959964 * math.sqrt(0.24 / 200)
    assert summary.bootstrap.low == pytest.approx(0.6 - half, abs=0.012)
    assert summary.bootstrap.high == pytest.approx(0.6 + half, abs=0.012)


def test_bootstrap_needs_ten_items():
    summary = pair_summary(
        [rating(i % 9, "a", rater=f"r{i}") for i in range(30)], "adapter", "base"
    )
    assert summary.bootstrap == Insufficient(REASON_FEW_ITEMS, 9, 10)
    assert summary.wilson.low > 0.8  # thirty judgments do support a Wilson interval
