"""Property tests of the assignment plan: plain Python, no database."""

import itertools
import random
import re
from collections import Counter, defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from evalhub.blinding import Item, Placed, new_token, plan_assignments, stored_choice


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


def test_stored_choice_maps_the_left_response_back_to_the_storage_order():
    assert stored_choice("a", left_is_a=True) == "a"
    assert stored_choice("a", left_is_a=False) == "b"
    assert stored_choice("b", left_is_a=True) == "b"
    assert stored_choice("b", left_is_a=False) == "a"
    assert stored_choice("tie", left_is_a=False) == "tie"
    assert stored_choice("both_bad", left_is_a=False) == "both_bad"
