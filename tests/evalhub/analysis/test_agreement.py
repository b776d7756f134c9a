import numpy as np
import pytest
from statsmodels.stats.inter_rater import cohens_kappa

from evalhub.analysis.agreement import (
    agreement_summary,
    cohen_kappa,
    fleiss,
    krippendorff_nominal,
    percent_agreement,
)
from evalhub.analysis.base import REASON_FEW_SHARED, REASON_NO_VARIATION, Insufficient
from tests.evalhub.analysis.builders import rating


def test_cohen_kappa_classic_two_by_two_by_hand():
    # 50 items: both "a" 20, r1 a / r2 b 5, r1 b / r2 a 10, both "b" 15.
    # p_o = 35/50 = 0.7; r1 says a 25/50, r2 says a 30/50;
    # p_e = 0.5·0.6 + 0.5·0.4 = 0.5; κ = (0.7 − 0.5)/(1 − 0.5) = 0.4
    first = ["a"] * 20 + ["a"] * 5 + ["b"] * 10 + ["b"] * 15
    second = ["a"] * 20 + ["b"] * 5 + ["a"] * 10 + ["b"] * 15
    assert cohen_kappa(first, second).value == pytest.approx(0.4)


def test_cohen_kappa_matches_statsmodels_on_four_categories():
    rng = np.random.default_rng(1)
    labels = ["a", "b", "tie", "both_bad"]
    first = list(rng.choice(labels, size=60))
    second = [x if rng.random() < 0.6 else rng.choice(labels) for x in first]
    table = np.zeros((4, 4))
    for x, y in zip(first, second, strict=True):
        table[labels.index(x), labels.index(y)] += 1
    assert cohen_kappa(first, second).value == pytest.approx(cohens_kappa(table).kappa)


def test_cohen_kappa_refuses_few_shared_items_and_no_variation():
    assert cohen_kappa(["a"] * 9, ["a"] * 9) == Insufficient(REASON_FEW_SHARED, 9, 10)
    assert cohen_kappa(["a"] * 12, ["a"] * 12).reason == REASON_NO_VARIATION


# Fleiss (1971) as reproduced on Wikipedia: 10 subjects, 14 raters, 5 categories.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def _groups_from_counts(table):
    groups = []
    for counts in table:
        labels = [str(c) for c, times in enumerate(counts, start=1) for _ in range(times)]
        groups.append({f"rater{k}": label for k, label in enumerate(labels)})
    return groups


def test_fleiss_kappa_on_the_classic_example_by_hand():
    # P_i = (Σ n_ij² − 14)/(14·13); P̄ = (1 + .253 + .308 + .440 + .330 + .462 + .242 + .176
    # + .286 + .286)/10 = 0.378. Column totals 20, 28, 39, 21, 32 (= 140), so
    # P̄e = Σ p_j² = .0204 + .0400 + .0776 + .0225 + .0522 = 0.2128.
    # κ = (0.378 − 0.2128)/(1 − 0.2128) = 0.2099
    result = fleiss(_groups_from_counts(FLEISS_TABLE))
    assert result.value == pytest.approx(0.20993, abs=5e-5)
    assert result.n == 10


def test_fleiss_uses_only_items_with_the_most_common_number_of_raters():
    groups = [*_groups_from_counts(FLEISS_TABLE), {"x": "1", "y": "2"}]
    assert fleiss(groups).value == pytest.approx(0.20993, abs=5e-5)


# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", nominal example:
# 4 observers, 12 units, missing values; α_nominal = 0.743. Unit 12 has one value only.
KRIPPENDORFF_DATA = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}


def test_krippendorff_alpha_textbook_example():
    groups = []
    for unit in range(12):
        values = {obs: row[unit] for obs, row in KRIPPENDORFF_DATA.items()}
        groups.append({obs: str(v) for obs, v in values.items() if v is not None})
    result = krippendorff_nominal(groups)
    assert result.value == pytest.approx(0.743, abs=5e-4)
    assert result.n == 11  # unit 12 cannot be paired


def test_percent_agreement_by_hand():
    # 10 items: 6 with two agreeing raters (1 pair, agrees), 4 with three raters "a", "a", "b"
    # (3 pairs, 1 agrees). Mean over items = (6·1 + 4·⅓)/10 = 0.7333…
    groups = [{"r1": "a", "r2": "a"}] * 6 + [{"r1": "a", "r2": "a", "r3": "b"}] * 4
    assert percent_agreement(groups).value == pytest.approx((6 + 4 / 3) / 10)


def test_agreement_summary_compares_verdicts_unblinded_and_lists_every_pair():
    ratings = []
    for item in range(12):
        verdict = "a" if item % 3 else "b"
        ratings.append(rating(item, verdict, rater="ann", left="a"))
        ratings.append(rating(item, verdict, rater="bob", left="b"))
        if item < 5:
            ratings.append(rating(item, "tie", rater="cy"))
    summary = agreement_summary(ratings)
    assert summary.raters == ["ann", "bob", "cy"]
    by_pair = {(p.rater_1, p.rater_2): p for p in summary.pairs}
    # ann and bob saw the sides swapped but always agree: κ = 1
    assert by_pair[("ann", "bob")].kappa.value == pytest.approx(1.0)
    assert by_pair[("ann", "cy")].kappa == Insufficient(REASON_FEW_SHARED, 5, 10)
    assert summary.items_with_overlap == 12
