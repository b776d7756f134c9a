import pytest

from evalhub.analysis import preferences as pref
from evalhub.analysis.preferences import Decision, Vote, decide, majority


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        (["a"], "a"),
        (["a", "a", "b"], "a"),
        (["b", "b", "tie"], "b"),
        (["a", "b"], None),
        (["a", "a", "b", "tie"], None),  # two of four is no majority
        (["tie", "tie", "a"], "tie"),
        ([], None),
    ],
)
def test_majority_is_more_than_half(verdicts, expected):
    assert majority(verdicts) == expected


def votes(comparison: int, verdicts: str, *, first_judgment: int, raters: str = "xyz") -> list:
    """One vote per letter: a, b, t (tie), x (both bad), s (skip)."""
    names = {"a": "a", "b": "b", "t": "tie", "x": "both_bad", "s": None}
    return [
        Vote(first_judgment + i, comparison, raters[i], names[letter])
        for i, letter in enumerate(verdicts)
    ]


def test_each_rule_leaves_out_what_it_names_and_the_rest_decide():
    study = [
        *votes(1, "aa", first_judgment=10),  # x a, y a (gated): a
        *votes(2, "ab", first_judgment=20, raters="xz"),  # an even split
        *votes(3, "tt", first_judgment=30),  # x's tie (y gated): tie
        *votes(4, "xb", first_judgment=40, raters="yz"),  # z's b alone: b
        *votes(5, "bbx", first_judgment=50, raters="xzy"),  # x b, z b: b
        *votes(6, "ss", first_judgment=60),  # x skipped, y gated: nothing counted
        *votes(7, "xx", first_judgment=70),  # x's both bad
        Vote(80, 99, "x", "a", gold=True),
        Vote(81, 99, "y", "b", gold=True),
    ]
    outcome = decide(study, comparisons=[1, 2, 3, 4, 5, 6, 7], adjudications={}, gated={"y"})
    assert outcome.decisions == [
        Decision(1, "a", (10,), False),
        Decision(4, "b", (41,), False),
        Decision(5, "b", (50, 51), False),
    ]
    assert outcome.left_out == {
        pref.GOLD: 2,  # 80, 81: gold is left out before the gate is asked
        pref.GATED: 6,  # 11, 31, 40, 52, 61, 71
        pref.SKIPPED: 1,  # 60
        pref.NO_JUDGMENT: 1,  # comparison 6
        pref.TIED: 1,  # comparison 3
        pref.BOTH_BAD_RULE: 1,  # comparison 7
        pref.NO_MAJORITY: 1,  # comparison 2
        pref.UNUSABLE: 0,
        pref.CORRECTION_GOLD: 0,
        pref.CORRECTION_GATED: 0,
    }
    assert outcome.raters == ["x", "z"]
    assert outcome.corrections == []


def test_an_even_split_without_gated_raters_makes_no_pair():
    outcome = decide(votes(2, "ab", first_judgment=1), comparisons=[2], adjudications={}, gated=())
    assert outcome.decisions == []
    assert outcome.left_out[pref.NO_MAJORITY] == 1


def test_a_final_call_overrides_the_majority_and_decides_unjudged_comparisons():
    study = [*votes(1, "aab", first_judgment=1), *votes(2, "ab", first_judgment=10)]
    outcome = decide(
        study, comparisons=[1, 2, 3, 4], adjudications={1: "b", 2: "a", 3: "b", 4: "tie"}, gated=()
    )
    assert outcome.decisions == [
        Decision(1, "b", (1, 2, 3), True),
        Decision(2, "a", (10, 11), True),
        Decision(3, "b", (), True),
    ]
    assert outcome.left_out[pref.TIED] == 1
    assert outcome.left_out[pref.NO_JUDGMENT] == 0


def test_a_decided_comparison_whose_answers_cannot_pair_is_left_out():
    study = [*votes(1, "aa", first_judgment=1), *votes(2, "tt", first_judgment=5)]
    outcome = decide(study, comparisons=[1, 2], adjudications={}, gated=(), unusable={1, 2})
    assert outcome.decisions == []
    assert (outcome.left_out[pref.UNUSABLE], outcome.left_out[pref.TIED]) == (1, 1)


def test_flagged_judgments_do_not_vote():
    study = [Vote(1, 1, "x", "a", flagged=True), Vote(2, 1, "y", "b")]
    outcome = decide(study, comparisons=[1], adjudications={}, gated=())
    assert outcome.decisions == [Decision(1, "b", (2,), False)]
    assert outcome.left_out[pref.SKIPPED] == 1


def test_corrections_count_unless_on_gold_or_by_a_gated_rater():
    study = [
        Vote(1, 1, "x", None, flagged=True, correction=True),  # a skip may still correct
        Vote(2, 1, "y", "a", correction=True),
        Vote(3, 1, "z", "a", correction=True),
        Vote(4, 9, "x", "a", gold=True, correction=True),
    ]
    outcome = decide(study, comparisons=[1], adjudications={}, gated={"z"})
    assert outcome.corrections == [1, 2]
    assert outcome.left_out[pref.CORRECTION_GOLD] == 1
    assert outcome.left_out[pref.CORRECTION_GATED] == 1
    assert outcome.raters == ["x", "y"]


def test_every_rule_is_described_with_its_unit():
    assert set(pref.RULES) == {
        pref.GOLD,
        pref.GATED,
        pref.SKIPPED,
        pref.NO_JUDGMENT,
        pref.TIED,
        pref.BOTH_BAD_RULE,
        pref.NO_MAJORITY,
        pref.UNUSABLE,
        pref.CORRECTION_GOLD,
        pref.CORRECTION_GATED,
    }
    assert {unit for unit, _ in pref.RULES.values()} == {"judgments", "comparisons", "corrections"}
