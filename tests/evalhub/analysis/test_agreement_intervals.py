import krippendorff
import numpy as np
import pytest
from statsmodels.stats.inter_rater import fleiss_kappa

from evalhub.analysis.agreement import (
    agreement_summary,
    category_table,
    cohen_kappa,
    labels_by_item,
)
from evalhub.analysis.agreement_intervals import (
    agreement_intervals,
    alpha_weighted,
    cohen_weighted,
    fleiss_weighted,
    percent_agreement_weighted,
    rater_drift,
)
from evalhub.analysis.base import Insufficient
from tests.evalhub.analysis.builders import rating

VERDICTS = ("a", "b", "tie", "both_bad")


def _study(*, items: int, accuracy: float, seed: int, raters: int = 2) -> list:
    """Each item has a true verdict, uniform over the four; each rater reports it with
    probability ``accuracy``, else one of the other three at random."""
    rng = np.random.default_rng(seed)
    ratings = []
    for item in range(items):
        truth = int(rng.integers(4))
        for k in range(raters):
            label = truth if rng.random() < accuracy else (truth + int(rng.integers(1, 4))) % 4
            ratings.append(rating(item, VERDICTS[label], rater=f"r{k}", prompt=item))
    return ratings


def test_intervals_hold_the_point_estimates_of_the_packages():
    ratings = _study(items=80, accuracy=0.7, seed=4, raters=3)
    summary = agreement_summary(ratings)
    result = agreement_intervals(ratings, resamples=300)
    # Krippendorff's α from the package's other input (raters × items, codes), independently
    codes = {v: i for i, v in enumerate(VERDICTS)}
    data = np.full((3, 80), np.nan)
    for r in ratings:
        data[int(r.rater[1:]), r.item] = codes[r.verdict]
    alpha = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert abs(summary.krippendorff_alpha.value - alpha) < 1e-9
    assert result.krippendorff_alpha.low < alpha < result.krippendorff_alpha.high
    assert result.fleiss_kappa.low < summary.fleiss_kappa.value < result.fleiss_kappa.high
    percent = summary.percent_agreement.value
    assert result.percent_agreement.low < percent < result.percent_agreement.high
    assert len(result.pairs) == len(summary.pairs) == 3
    for interval, pair in zip(result.pairs, summary.pairs, strict=True):
        assert interval.low < pair.kappa.value < interval.high


def test_weighted_coefficients_equal_the_packages_on_the_repeated_table():
    # Weight w on an item must mean the same as the item written w times.
    table = category_table(
        list(labels_by_item(_study(items=40, accuracy=0.6, seed=2, raters=3)).values())
    )
    weights = np.random.default_rng(0).integers(0, 4, size=(5, len(table))).astype(float)
    for row in weights:
        repeated = np.repeat(table, row.astype(int), axis=0)
        alpha = krippendorff.alpha(value_counts=repeated, level_of_measurement="nominal")
        assert alpha_weighted(table, row[None])[0] == pytest.approx(alpha, abs=1e-12)
        kappa = fleiss_kappa(repeated, method="fleiss")
        assert fleiss_weighted(table, row[None])[0] == pytest.approx(kappa, abs=1e-12)
        m = repeated.sum(axis=1)
        percent = ((repeated * (repeated - 1)).sum(axis=1) / (m * (m - 1))).mean()
        assert percent_agreement_weighted(table, row[None])[0] == pytest.approx(percent)


def test_weighted_cohen_kappa_equals_the_plain_one_on_repeated_items():
    rng = np.random.default_rng(3)
    first = [VERDICTS[i] for i in rng.integers(0, 4, 30)]
    second = [v if rng.random() < 0.6 else VERDICTS[int(rng.integers(4))] for v in first]
    one_hot = np.eye(4)
    a = one_hot[[VERDICTS.index(v) for v in first]]
    b = one_hot[[VERDICTS.index(v) for v in second]]
    for row in rng.integers(0, 3, size=(5, 30)).astype(float):
        times = row.astype(int)
        expected = cohen_kappa(np.repeat(first, times).tolist(), np.repeat(second, times).tolist())
        assert cohen_weighted(a, b, row[None])[0] == pytest.approx(expected.value, abs=1e-12)


def test_intervals_cover_the_true_agreement_in_a_seeded_simulation():
    # Two raters, accuracy q: they agree with probability q² + (1 − q)²/3; with uniform labels
    # chance disagreement is ¾, so α tends to 1 − (1 − P(agree)) / ¾.
    q = 0.7
    agree = q * q + (1 - q) ** 2 / 3
    alpha = 1 - (1 - agree) / 0.75
    runs = 60
    covered_percent = covered_alpha = 0
    for seed in range(runs):
        result = agreement_intervals(
            _study(items=60, accuracy=q, seed=seed), seed=seed, resamples=200
        )
        covered_percent += result.percent_agreement.low <= agree <= result.percent_agreement.high
        covered_alpha += result.krippendorff_alpha.low <= alpha <= result.krippendorff_alpha.high
    # 95 % intervals: out of 60, fewer than 52 covered would be very unlikely (p < 0.01)
    assert covered_percent >= 52 and covered_alpha >= 52


def test_intervals_need_enough_shared_items():
    result = agreement_intervals(_study(items=5, accuracy=0.8, seed=1))
    assert isinstance(result.krippendorff_alpha, Insufficient)
    assert isinstance(result.fleiss_kappa, Insufficient)


def test_drift_shows_a_rater_who_stops_agreeing():
    rng = np.random.default_rng(5)
    ratings = []
    for item in range(120):
        truth = VERDICTS[int(rng.integers(2))]
        ratings.append(rating(item, truth, rater="steady1", prompt=item, time_ms=9000))
        ratings.append(rating(item, truth, rater="steady2", prompt=item, time_ms=9000))
        late = item >= 60
        careless = VERDICTS[int(rng.integers(4))] if late else truth
        ratings.append(
            rating(item, careless, rater="tiring", prompt=item, time_ms=1000 if late else 8000)
        )
    result = rater_drift(ratings, resamples=300)
    rows = {r.rater: r for r in result.raters}
    assert rows["tiring"].early.value == 1.0
    assert rows["tiring"].late.value < 0.5
    assert rows["tiring"].change < -0.5
    assert (rows["tiring"].early_median_ms, rows["tiring"].late_median_ms) == (8000, 1000)
    assert abs(rows["steady1"].change) < 0.3
    assert result.change < 0
    assert result.change_interval.high < 0


def test_drift_needs_enough_judgments_in_each_half():
    ratings = [rating(i, "a", rater=r, prompt=i) for i in range(8) for r in ("r1", "r2")]
    result = rater_drift(ratings)
    assert isinstance(result.raters[0].early, Insufficient)
    assert result.change is None and isinstance(result.change_interval, Insufficient)
