import random
from collections import Counter

import pytest

from trainer.datasets import InvalidSplit, lint, prepare_dataset
from trainer.datasets.split import (
    RATIOS_FORMAT,
    RATIOS_NEGATIVE,
    RATIOS_NO_TRAIN,
    RATIOS_SUM,
    assign_splits,
    parse_ratios,
    targets,
)

from .helpers import chat, distinct_records, write_jsonl


def splits_by_hash(prepared):
    return {e.content_hash: e.split for e in prepared.examples}


def test_the_split_is_deterministic_for_a_seed(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", distinct_records(200))
    first = [e.split for e in prepare_dataset(path, seed=7).examples]
    assert first == [e.split for e in prepare_dataset(path, seed=7).examples]
    assert first != [e.split for e in prepare_dataset(path, seed=8).examples]


def test_the_split_follows_the_ratios(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", distinct_records(1000))
    assert prepare_dataset(path).counts == {
        "train": 800,
        "validation": 100,
        "feedback": 0,
        "test": 100,
    }
    prepared = prepare_dataset(path, ratios=(0.7, 0.0, 0.3))
    assert prepared.counts == {"train": 700, "validation": 0, "feedback": 0, "test": 300}
    prepared = prepare_dataset(path, ratios=(0.7, 0.1, 0.1, 0.1))
    assert prepared.counts == {"train": 700, "validation": 100, "feedback": 100, "test": 100}
    assert prepared.ratios == (0.7, 0.1, 0.1, 0.1)


def test_three_shares_split_as_four_with_no_feedback(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", distinct_records(300))
    three = prepare_dataset(path, ratios=(0.8, 0.1, 0.1), seed=4)
    four = prepare_dataset(path, ratios=(0.8, 0.1, 0.0, 0.1), seed=4)
    assert three.ratios == four.ratios == (0.8, 0.1, 0.0, 0.1)
    assert [e.split for e in three.examples] == [e.split for e in four.examples]


def test_a_feedback_split_takes_nothing_from_the_test_split(tmp_path):
    """Carving out feedback prompts leaves the test split exactly as it was: test is filled
    first, so the same seed holds out the same test examples."""
    path = write_jsonl(tmp_path / "m.jsonl", distinct_records(400))
    before = prepare_dataset(path, ratios=(0.8, 0.1, 0.1), seed=2)
    after = prepare_dataset(path, ratios=(0.7, 0.1, 0.1, 0.1), seed=2)
    test_before = {e.content_hash for e in before.examples if e.split == "test"}
    test_after = {e.content_hash for e in after.examples if e.split == "test"}
    assert test_before == test_after


def test_the_feedback_split_does_not_depend_on_file_order(tmp_path):
    records = distinct_records(150)
    ratios = (0.6, 0.1, 0.2, 0.1)
    first = prepare_dataset(write_jsonl(tmp_path / "a.jsonl", records), ratios=ratios, seed=3)
    random.Random(1).shuffle(records)
    second = prepare_dataset(write_jsonl(tmp_path / "b.jsonl", records), ratios=ratios, seed=3)
    assert splits_by_hash(first) == splits_by_hash(second)
    assert Counter(splits_by_hash(first).values())["feedback"] == 30


def test_the_split_does_not_depend_on_file_order(tmp_path):
    records = distinct_records(150)
    first = prepare_dataset(write_jsonl(tmp_path / "a.jsonl", records), seed=3)
    random.Random(1).shuffle(records)
    second = prepare_dataset(write_jsonl(tmp_path / "b.jsonl", records), seed=3)
    assert splits_by_hash(first) == splits_by_hash(second)


def test_exact_duplicates_stay_on_one_side(tmp_path):
    records = distinct_records(100)
    # 40 copies spread over the file: 20 of record 0 and 20 of record 1.
    records += [records[0]] * 20 + [records[1]] * 20
    random.Random(2).shuffle(records)
    for seed in range(10):
        prepared = prepare_dataset(write_jsonl(tmp_path / "m.jsonl", records), seed=seed)
        sides: dict[str, set[str]] = {}
        for example in prepared.examples:
            sides.setdefault(example.content_hash, set()).add(example.split)
        assert all(len(s) == 1 for s in sides.values())


def test_same_prompts_and_near_duplicates_stay_on_one_side(tmp_path):
    records = distinct_records(60)
    question = "How long should a four kilogram turkey rest before carving?"
    answer = "Let it rest for forty minutes under loose foil so the juices settle."
    records += [chat(question, f"{answer} Variant {n}.") for n in range(12)]
    records += [chat(question.upper(), answer), chat(question.lower(), answer)]
    for seed in range(10):
        prepared = prepare_dataset(write_jsonl(tmp_path / "m.jsonl", records), seed=seed)
        assert len({e.split for e in prepared.examples[60:]}) == 1
        assert not [i for i in prepared.issues if i.code == lint.SPLIT_LEAKAGE]


def test_splits_given_by_the_file_are_kept(tmp_path):
    records = [
        dict(r, split=s)
        for r, s in zip(distinct_records(4), ["train", "test", "val", "train"], strict=True)
    ]
    prepared = prepare_dataset(write_jsonl(tmp_path / "m.jsonl", records), ratios=(0.5, 0.25, 0.25))
    assert [e.split for e in prepared.examples] == ["train", "test", "validation", "train"]
    assert prepared.split_source == "file"
    assert prepared.ratios == (0.5, 0.25, 0.0, 0.25)


def test_a_feedback_split_given_by_the_file_is_kept(tmp_path):
    records = [
        dict(r, split=s)
        for r, s in zip(distinct_records(4), ["train", "feedback", "test", "train"], strict=True)
    ]
    prepared = prepare_dataset(write_jsonl(tmp_path / "m.jsonl", records))
    assert [e.split for e in prepared.examples] == ["train", "feedback", "test", "train"]
    assert prepared.ratios == (0.5, 0.0, 0.25, 0.25)


@pytest.mark.parametrize(
    ("total", "ratios", "expected"),
    [
        (10, (0.8, 0.1, 0.0, 0.1), {"validation": 1, "feedback": 0, "test": 1}),
        (3, (0.8, 0.1, 0.0, 0.1), {"validation": 1, "feedback": 0, "test": 1}),
        (2, (0.8, 0.1, 0.0, 0.1), {"validation": 0, "feedback": 0, "test": 0}),
        (100, (0.8, 0.2, 0.0, 0.0), {"validation": 20, "feedback": 0, "test": 0}),
        (10, (0.02, 0.49, 0.0, 0.49), {"validation": 4, "feedback": 0, "test": 5}),
        (20, (0.7, 0.1, 0.1, 0.1), {"validation": 2, "feedback": 2, "test": 2}),
        (4, (0.7, 0.1, 0.1, 0.1), {"validation": 1, "feedback": 1, "test": 1}),
        (3, (0.7, 0.1, 0.1, 0.1), {"validation": 0, "feedback": 0, "test": 0}),
    ],
)
def test_targets(total, ratios, expected):
    assert targets(total, ratios) == expected


def test_assign_splits_keeps_groups_whole_and_fills_the_targets():
    groups = [[0, 1, 2], [3], [4], [5, 6], [7], [8], [9]]
    keys = [f"k{n}" for n in range(len(groups))]
    result = assign_splits(groups, keys, 10, (0.6, 0.2, 0.0, 0.2), seed=0)
    for group in groups:
        assert len({result[i] for i in group}) == 1
    assert Counter(result) == {"train": 6, "validation": 2, "test": 2}
    result = assign_splits(groups, keys, 10, (0.4, 0.2, 0.2, 0.2), seed=0)
    for group in groups:
        assert len({result[i] for i in group}) == 1
    assert Counter(result) == {"train": 4, "validation": 2, "feedback": 2, "test": 2}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0.8,0.2", RATIOS_FORMAT.format(text="0.8,0.2")),
        ("0.5,0.1,0.1,0.1,0.2", RATIOS_FORMAT.format(text="0.5,0.1,0.1,0.1,0.2")),
        ("0.7,0.1,0.1,0.2", RATIOS_SUM.format(ratios="0.7,0.1,0.1,0.2", total=1.1)),
        ("a,b,c", RATIOS_FORMAT.format(text="a,b,c")),
        ("0.8,0.3,-0.1", RATIOS_NEGATIVE.format(ratios="0.8,0.3,-0.1")),
        ("80,10,10", RATIOS_SUM.format(ratios="80,10,10", total=100)),
        ("0,0.5,0.5", RATIOS_NO_TRAIN.format(ratios="0,0.5,0.5")),
        ("nan,0.5,0.5", RATIOS_FORMAT.format(text="nan,0.5,0.5")),
    ],
)
def test_bad_ratios(text, message):
    with pytest.raises(InvalidSplit) as caught:
        parse_ratios(text)
    assert str(caught.value) == message


def test_good_ratios():
    assert parse_ratios(" 0.7, 0.2 ,0.1") == (0.7, 0.2, 0.0, 0.1)
    assert parse_ratios("0.7,0.1,0.1,0.1") == (0.7, 0.1, 0.1, 0.1)
