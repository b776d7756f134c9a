from evalhub.analysis.summary import analyse_study, compared_pairs
from tests.evalhub.analysis.builders import rating


def test_pairs_put_the_callers_system_of_interest_first():
    ratings = [
        rating(0, "a", system_a="base", system_b="adapter"),
        rating(1, "a", system_a="reference", system_b="base"),
    ]
    assert compared_pairs(ratings, ["adapter", "base", "reference"]) == [
        ("adapter", "base"),
        ("base", "reference"),
    ]


def test_gold_items_check_raters_but_never_count_for_the_systems():
    ratings = [rating(i, "a", rater=r) for i in range(12) for r in ("ann", "bob")]
    # gold items between the gold systems: ann right on all six, bob wrong on all six
    for i in range(100, 106):
        gold = {"system_a": "gold:better", "system_b": "gold:worse", "gold": "a"}
        ratings.append(rating(i, "a", rater="ann", left="b", **gold))
        ratings.append(rating(i, "b", rater="bob", left="b", **gold))
    result = analyse_study(
        ratings, systems=["adapter", "base"], criteria=[], item_metrics={}, resamples=50
    )
    assert [(p.system, p.opponent) for p in result.pairs] == [("adapter", "base")]
    assert result.pairs[0].n == 24
    assert (result.judgments, result.items, result.gold_judgments) == (24, 12, 12)
    assert result.agreement.items_with_overlap == 12
    gold = {r.rater: r.gold_accuracy for r in result.raters}
    assert (gold["ann"].value, gold["bob"].value) == (1.0, 0.0)
    # position bias sees every decisive judgment: 24 left wins + ann's 6 right + bob's 6 left
    assert (result.position_bias.hits, result.position_bias.n) == (30, 36)
    assert result.ranking.reason.startswith("Bradley–Terry ranks need more than two")
