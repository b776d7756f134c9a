import pytest

from evalhub.reports.unblind import unblind_choice, unblind_scores


@pytest.mark.parametrize(
    ("choice", "left_is_a", "verdict"),
    [
        ("a", True, "a"),  # left was output_a and won
        ("a", False, "b"),  # left was output_b and won
        ("b", True, "b"),
        ("b", False, "a"),
        ("tie", False, "tie"),
        ("both_bad", False, "both_bad"),
    ],
)
def test_unblind_choice(choice, left_is_a, verdict):
    assert unblind_choice(choice, left_is_a=left_is_a) == verdict


def test_unblind_scores_swaps_sides_when_output_b_was_on_the_left():
    shown = {"accuracy": {"a": 5, "b": 2}}
    assert unblind_scores(shown, left_is_a=True) == {"accuracy": (5, 2)}
    assert unblind_scores(shown, left_is_a=False) == {"accuracy": (2, 5)}


def test_unblind_scores_keeps_one_sided_scores_and_drops_junk():
    shown = {
        "style": {"a": 4},
        "tone": {"a": "high", "b": True},
        "clarity": 3,
        "depth": {"b": 1.5},
    }
    assert unblind_scores(shown, left_is_a=False) == {"style": (None, 4), "depth": (1.5, None)}
    assert unblind_scores(None, left_is_a=True) == {}
