import pytest

from evalhub.analysis.base import REASON_FEW_GOLD, REASON_FEW_ITEMS, Insufficient
from evalhub.analysis.raters import plurality, rater_summaries
from tests.evalhub.analysis.builders import rating


def test_plurality_is_none_when_the_top_verdict_is_shared():
    assert plurality(["a", "a", "b"]) == "a"
    assert plurality(["a", "b"]) is None
    assert plurality([]) is None
    # The most common verdict, even short of half (the preference rule, a strict majority,
    # gives none here).
    assert plurality(["a", "a", "b", "c"]) == "a"


def _panel():
    """16 items, three raters. ann and bob always say "a"; cy says "b" on items 0–3."""
    ratings = []
    for item in range(16):
        ratings.append(rating(item, "a", rater="ann", time_ms=1000 + item, left="a"))
        ratings.append(rating(item, "a", rater="bob", time_ms=None, left="b"))
        ratings.append(rating(item, "b" if item < 4 else "a", rater="cy", time_ms=3000))
    return ratings


def test_agreement_with_the_majority_of_the_other_raters():
    summaries = {s.rater: s for s in rater_summaries(_panel())}
    # ann: on items 0–3 the others are {a, b}: no majority, not counted; on 4–15 they are
    # {a, a}: 12 of 12 agree. cy: others are always {a, a}; cy agrees on items 4–15: 12 of 16.
    ann = summaries["ann"].majority_agreement
    assert (ann.hits, ann.n, ann.value) == (12, 12, 1.0)
    assert summaries["cy"].majority_agreement.value == pytest.approx(12 / 16)


def test_agreement_with_majority_refuses_few_items():
    summaries = {s.rater: s for s in rater_summaries(_panel()[:27])}  # items 0–8
    # ann: items 4–8 only have a majority among the others: 5 < 10
    assert summaries["ann"].majority_agreement == Insufficient(REASON_FEW_ITEMS, 5, 10)


def test_median_time_left_share_and_judgment_count():
    summaries = {s.rater: s for s in rater_summaries(_panel())}
    # ann: times 1000..1015, median of 16 values = (1007 + 1008)/2
    assert summaries["ann"].median_time_ms == 1007.5
    assert summaries["bob"].median_time_ms is None and summaries["bob"].timed == 0
    assert summaries["ann"].left_share == 1.0  # chose "a", shown left, every time
    assert summaries["bob"].left_share == 0.0  # chose "a", shown right, every time
    assert summaries["cy"].judgments == 16


def test_gold_accuracy():
    ratings = [rating(i, "a", gold="a") for i in range(4)] + [rating(4, "tie", gold="b")]
    ratings += [rating(5, "tie", gold="tie"), rating(6, "b")]
    summary = rater_summaries(ratings)[0]
    # 6 gold judgments (item 6 is not gold), correct on 0–3 and 5
    assert (summary.gold_accuracy.hits, summary.gold_accuracy.n) == (5, 6)
    assert summary.gold_accuracy.value == pytest.approx(5 / 6)
    few = rater_summaries(ratings[:3])[0]
    assert few.gold_accuracy == Insufficient(REASON_FEW_GOLD, 3, 5)
