"""The assignment plan's properties, and the one rule that turns what a rater saw (A = left)
into what it means (output_a / output_b). No database: models are built unsaved."""

import itertools
import random
import re
from collections import Counter, defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalhub.analysis.records import BOTH_BAD, TIE, A, B
from evalhub.blinding import (
    Item,
    Placed,
    blind_choice,
    left_is_a,
    new_token,
    plan_assignments,
    sides,
    unblind_choice,
    unblind_scores,
)
from evalhub.models import Assignment, Choice, Comparison, GoldAnswer, Output


def make_items(systems: int, prompts: int, gold: int = 0) -> list[Item]:
    """Every pair of systems on every prompt, plus gold items between two gold systems."""
    items = [
        Item(key=f"p{p}:{x}-{y}", first=f"s{x}", second=f"s{y}")
        for p in range(prompts)
        for x, y in itertools.combinations(range(systems), 2)
    ]
    items += [Item(key=f"g{g}", first="gold+", second="gold-", everyone=True) for g in range(gold)]
    return items


studies = st.fixed_dictionaries(
    {
        "systems": st.integers(2, 4),
        "prompts": st.integers(1, 15),
        "gold": st.integers(0, 3),
        "raters": st.integers(1, 6),
        "overlap": st.integers(1, 4),
        "seed": st.integers(0, 2**31),
    }
)


def plan(study: dict, existing=()) -> tuple[list[Item], list[Placed]]:
    items = make_items(study["systems"], study["prompts"], study["gold"])
    raters = [f"r{i}" for i in range(study["raters"])]
    placed = plan_assignments(
        items=items, raters=raters, overlap=study["overlap"], seed=study["seed"], existing=existing
    )
    return items, placed


def assert_counterbalanced(items: list[Item], placed: list[Placed]) -> None:
    by_key = {i.key: i for i in items}
    lead: Counter = Counter()
    for p in placed:
        item = by_key[p.item]
        assert p.left in (item.first, item.second)
        pair = tuple(sorted((item.first, item.second)))
        lead[(p.rater, pair)] += 1 if p.left == pair[0] else -1
    assert all(abs(v) <= 1 for v in lead.values()), lead


@given(studies)
def test_each_comparison_goes_to_overlap_distinct_raters_and_gold_to_everyone(study):
    items, placed = plan(study)
    holders = defaultdict(list)
    for p in placed:
        holders[p.item].append(p.rater)
    for item in items:
        wanted = study["raters"] if item.everyone else min(study["overlap"], study["raters"])
        assert len(holders[item.key]) == wanted
        assert len(set(holders[item.key])) == wanted


@given(studies)
def test_rater_loads_differ_by_at_most_one(study):
    _, placed = plan(study)
    load = Counter(p.rater for p in placed)
    counts = [load[f"r{i}"] for i in range(study["raters"])]
    assert max(counts) - min(counts) <= 1


@given(studies)
def test_each_system_of_each_pair_is_on_the_left_in_half_of_each_raters_items(study):
    items, placed = plan(study)
    assert_counterbalanced(items, placed)


@given(studies)
def test_positions_of_each_rater_are_a_permutation(study):
    _, placed = plan(study)
    positions = defaultdict(list)
    for p in placed:
        positions[p.rater].append(p.position)
    for got in positions.values():
        assert sorted(got) == list(range(len(got)))


@given(studies)
def test_plan_is_deterministic_given_the_seed(study):
    assert plan(study)[1] == plan(study)[1]


def test_different_seeds_give_different_orders_and_sides():
    study = {"systems": 2, "prompts": 30, "gold": 0, "raters": 2, "overlap": 2, "seed": 1}
    first = plan(study)[1]
    second = plan({**study, "seed": 2})[1]
    assert {(p.item, p.rater): p.position for p in first} != {
        (p.item, p.rater): p.position for p in second
    }
    assert {(p.item, p.rater): p.left for p in first} != {(p.item, p.rater): p.left for p in second}


def test_order_is_shuffled_not_the_input_order():
    study = {"systems": 2, "prompts": 40, "gold": 0, "raters": 1, "overlap": 1, "seed": 7}
    items, placed = plan(study)
    seen = [p.item for p in sorted(placed, key=lambda p: p.position)]
    assert sorted(seen) == sorted(i.key for i in items)
    assert seen != sorted(seen)


def test_sides_are_not_tied_to_the_storage_order():
    # 200 items, one rater: about half should show the stored first system on the left, and
    # which ones should look random (not alternating with position, not all at the start).
    study = {"systems": 2, "prompts": 200, "gold": 0, "raters": 1, "overlap": 1, "seed": 3}
    _, placed = plan(study)
    in_order = [p.left == "s0" for p in sorted(placed, key=lambda p: p.position)]
    assert sum(in_order) == 100
    alternations = sum(a != b for a, b in itertools.pairwise(in_order))
    assert 70 < alternations < 130  # a fair coin alternates ~100 times; a fixed pattern would not


@settings(max_examples=60)
@given(studies, st.integers(1, 3), st.integers(0, 2))
def test_adding_raters_later_keeps_existing_and_follows_the_same_rules(study, added, raise_by):
    items, first = plan(study)
    grown = {**study, "raters": study["raters"] + added, "overlap": study["overlap"] + raise_by}
    new = plan(grown, existing=first)[1]
    everything = first + new

    assert not {(p.item, p.rater) for p in first} & {(p.item, p.rater) for p in new}
    holders = defaultdict(set)
    for p in everything:
        holders[p.item].add(p.rater)
    for item in items:
        wanted = grown["raters"] if item.everyone else min(grown["overlap"], grown["raters"])
        assert len(holders[item.key]) == wanted
    assert_counterbalanced(items, everything)
    positions = defaultdict(list)
    for p in everything:
        positions[p.rater].append(p.position)
    for got in positions.values():
        assert sorted(got) == list(range(len(got)))


def test_new_raters_take_the_new_work_when_the_overlap_is_raised():
    study = {"systems": 2, "prompts": 20, "gold": 0, "raters": 2, "overlap": 2, "seed": 5}
    _, first = plan(study)
    new = plan({**study, "raters": 4, "overlap": 3}, existing=first)[1]
    load = Counter(p.rater for p in new)
    assert load == {"r2": 10, "r3": 10}


def test_a_new_rater_gets_every_gold_item():
    study = {"systems": 2, "prompts": 6, "gold": 3, "raters": 2, "overlap": 2, "seed": 5}
    _, first = plan(study)
    new = plan({**study, "raters": 3}, existing=first)[1]
    assert sorted(p.item for p in new) == ["g0", "g1", "g2"]


def test_tokens_are_unique_url_safe_and_say_nothing():
    tokens = [new_token() for _ in range(2000)]
    assert len(set(tokens)) == len(tokens)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", t) for t in tokens)


def test_tokens_do_not_come_from_a_seedable_generator():
    random.seed(1)
    first = new_token()
    random.seed(1)
    assert new_token() != first


def test_the_left_output_is_a_exactly_when_it_is_the_comparisons_output_a():
    assert left_is_a(left_output=7, output_a=7) is True
    assert left_is_a(left_output=8, output_a=7) is False


def test_sides_puts_output_a_on_the_left_or_the_right_and_swaps_back():
    assert sides("output a", "output b", left_is_a=True) == ("output a", "output b")
    assert sides("output a", "output b", left_is_a=False) == ("output b", "output a")
    for shown_a in (True, False):
        left, right = sides("output a", "output b", left_is_a=shown_a)
        assert sides(left, right, left_is_a=shown_a) == ("output a", "output b")


@pytest.mark.parametrize(
    ("choice", "shown_a", "verdict"),
    [
        ("a", True, "a"),  # left was output_a and won
        ("a", False, "b"),  # left was output_b and won
        ("b", True, "b"),
        ("b", False, "a"),
        ("tie", True, "tie"),
        ("tie", False, "tie"),
        ("both_bad", True, "both_bad"),
        ("both_bad", False, "both_bad"),
    ],
)
def test_unblind_choice_maps_the_left_response_to_the_storage_order(choice, shown_a, verdict):
    assert unblind_choice(choice, left_is_a=shown_a) == verdict


@pytest.mark.parametrize("shown_a", [True, False])
@pytest.mark.parametrize("verdict", ["a", "b", "tie", "both_bad"])
def test_blind_choice_is_what_the_rater_picks_for_a_verdict(verdict, shown_a):
    choice = blind_choice(verdict, left_is_a=shown_a)
    assert unblind_choice(choice, left_is_a=shown_a) == verdict
    assert (choice == verdict) is (shown_a or verdict in ("tie", "both_bad"))


def test_unblind_scores_keeps_sides_when_output_a_was_on_the_left():
    shown = {"accuracy": {"a": 5, "b": 2}, "style": {"a": 1, "b": 4}}
    assert unblind_scores(shown, left_is_a=True) == {"accuracy": (5, 2), "style": (1, 4)}


def test_unblind_scores_swaps_sides_when_output_b_was_on_the_left():
    shown = {"accuracy": {"a": 5, "b": 2}, "style": {"a": 1, "b": 4}}
    assert unblind_scores(shown, left_is_a=False) == {"accuracy": (2, 5), "style": (4, 1)}


def test_unblind_scores_keeps_one_sided_scores_on_their_output_and_drops_junk():
    shown = {
        "style": {"a": 4},
        "tone": {"a": "high", "b": True},
        "clarity": 3,
        "depth": {"b": 1.5},
    }
    assert unblind_scores(shown, left_is_a=False) == {"style": (None, 4), "depth": (1.5, None)}
    assert unblind_scores(shown, left_is_a=True) == {"style": (4, None), "depth": (None, 1.5)}
    assert unblind_scores(None, left_is_a=True) == {}


def test_a_raters_letters_are_the_verdicts_letters():
    # unblind_choice returns a Choice value unchanged or swapped, so the stored spellings of the
    # rater's choice, the gold answer and the verdict must stay one and the same.
    assert (Choice.A, Choice.B, Choice.TIE, Choice.BOTH_BAD) == (A, B, TIE, BOTH_BAD)
    assert (GoldAnswer.A, GoldAnswer.B, GoldAnswer.TIE) == (A, B, TIE)


def unsaved_assignment(*, left: str) -> Assignment:
    output_a, output_b = Output(pk=1, text="first"), Output(pk=2, text="second")
    comparison = Comparison(output_a=output_a, output_b=output_b)
    shown = output_a if left == "output_a" else output_b
    return Assignment(comparison=comparison, left_output=shown)


@pytest.mark.parametrize("left", ["output_a", "output_b"])
def test_an_assignment_shows_its_left_output_as_a_and_unblinds_a_to_it(left):
    assignment = unsaved_assignment(left=left)
    comparison = assignment.comparison
    shown_left, shown_right = assignment.sides()
    assert shown_left is assignment.left_output
    assert {shown_left.pk, shown_right.pk} == {comparison.output_a.pk, comparison.output_b.pk}
    assert assignment.left_is_a is (left == "output_a")
    # Whatever the rater calls A is the output shown on the left, in choices and in scores.
    storage = {"a": comparison.output_a, "b": comparison.output_b}
    assert storage[unblind_choice("a", left_is_a=assignment.left_is_a)] is shown_left
    assert storage[unblind_choice("b", left_is_a=assignment.left_is_a)] is shown_right
    scores = unblind_scores({"accuracy": {"a": 5, "b": 1}}, left_is_a=assignment.left_is_a)
    outputs = (comparison.output_a, comparison.output_b)
    by_output = dict(zip(outputs, scores["accuracy"], strict=True))
    assert (by_output[shown_left], by_output[shown_right]) == (5, 1)
