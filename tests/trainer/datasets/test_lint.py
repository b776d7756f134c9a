"""Each lint rule fires with the right lines on a tiny file, and stays quiet on clean data."""

import json

import pytest

from trainer.datasets import lint, prepare_dataset
from trainer.datasets.lint import repeats_prompt

from .helpers import chat, distinct_records, write_jsonl


def issues(path, code, **kwargs):
    return [i for i in prepare_dataset(path, **kwargs).issues if i.code == code]


def lines_of(path, code, **kwargs):
    return [i.lines for i in issues(path, code, **kwargs)]


def test_clean_data_of_the_sweet_spot_size_has_no_issue(tmp_path):
    path = write_jsonl(tmp_path / "clean.jsonl", distinct_records(1000))
    assert prepare_dataset(path).issues == []


def test_every_rule_has_a_severity():
    assert set(lint.CODES) == set(lint.SEVERITY)
    assert set(lint.SEVERITY.values()) <= set(lint.SEVERITIES)


def test_mixed_role_names_report_the_minority_labels(tmp_path):
    records = distinct_records(6)
    records[2]["messages"][0]["role"] = "human"
    records[4]["messages"][1]["role"] = "bot"
    records[5]["messages"][1]["role"] = "bot"
    found = issues(write_jsonl(tmp_path / "m.jsonl", records), lint.MIXED_SPEAKER_LABELS)
    assert [(i.severity, i.lines) for i in found] == [("warning", (3,)), ("warning", (5, 6))]
    assert "'user' (5), 'human' (1)" in found[0].message


def test_mixed_transcript_prefixes_report_the_turn_lines(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(
        "User: a?\nAssistant: b.\n\nUser: c?\nAssistant: d.\n\nHuman: e?\nAssistant: f.\n"
    )
    assert lines_of(path, lint.MIXED_SPEAKER_LABELS) == [(7,)]


def test_one_consistent_label_set_is_not_mixed(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("Human: a?\nAI: b.\n\nHuman: c?\nAI: d.\n")
    assert lines_of(path, lint.MIXED_SPEAKER_LABELS) == []


def test_inconsistent_system_prompt_reports_the_minority(tmp_path):
    records = distinct_records(5)
    records[1]["messages"].insert(0, {"role": "system", "content": "Be brief."})
    path = write_jsonl(tmp_path / "m.jsonl", records)
    [found] = issues(path, lint.INCONSISTENT_SYSTEM_PROMPT)
    assert (found.severity, found.lines) == ("warning", (2,))
    for record in records:
        if record["messages"][0]["role"] != "system":
            record["messages"].insert(0, {"role": "system", "content": "Be brief."})
    assert lines_of(write_jsonl(path, records), lint.INCONSISTENT_SYSTEM_PROMPT) == []


def test_empty_and_whitespace_turns_are_errors(tmp_path):
    records = distinct_records(4)
    records[1]["messages"][1]["content"] = " \n\t"
    records[3]["messages"][0]["content"] = ""
    [found] = issues(write_jsonl(tmp_path / "m.jsonl", records), lint.EMPTY_TURN)
    assert (found.severity, found.lines) == ("error", (2, 4))


def test_empty_transcript_turn_reports_its_own_line(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("User: q?\nAssistant: a.\n\nUser: r?\n\nUser: s?\nAssistant:\n")
    assert lines_of(path, lint.EMPTY_TURN) == [(7,)]
    assert lines_of(path, lint.MISSING_FINAL_ASSISTANT) == [(4,)]


def test_missing_final_assistant_turn_is_an_error(tmp_path):
    records = distinct_records(3)
    records[0]["messages"].append({"role": "user", "content": "And then?"})
    records[2]["messages"].pop()
    [found] = issues(write_jsonl(tmp_path / "m.jsonl", records), lint.MISSING_FINAL_ASSISTANT)
    assert (found.severity, found.lines) == ("error", (1, 3))


def test_exact_duplicates_are_grouped(tmp_path):
    records = distinct_records(6)
    records[3] = records[0]
    records[5] = records[0]
    records[4] = records[1]
    found = issues(write_jsonl(tmp_path / "m.jsonl", records), lint.EXACT_DUPLICATE)
    assert [(i.severity, i.lines) for i in found] == [("warning", (1, 4, 6)), ("warning", (2, 5))]


def test_key_order_and_spacing_do_not_hide_an_exact_duplicate(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(
        '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
        '{"messages":[{"content":"q","role":"user"},{"content":"a","role":"assistant"}]}\n'
    )
    assert lines_of(path, lint.EXACT_DUPLICATE) == [(1, 2)]


def test_near_duplicates_by_normalised_text_and_by_minhash(tmp_path):
    records = distinct_records(6)
    answer = "Weigh the flour on a scale, then sift it twice before folding it into the batter."
    records[0] = chat("How much flour goes into one loaf of sandwich bread?", answer)
    records[2] = chat("how much FLOUR goes into one loaf of sandwich bread", answer)  # case, punct.
    records[4] = chat(
        "How much flour goes into one loaf of sandwich bread?", answer[:-1] + " gently."
    )
    [found] = issues(write_jsonl(tmp_path / "m.jsonl", records), lint.NEAR_DUPLICATE)
    assert (found.severity, found.lines) == ("warning", (1, 3, 5))


def test_exact_duplicates_are_not_also_near_duplicates(tmp_path):
    records = distinct_records(4)
    records[2] = records[0]
    assert lines_of(write_jsonl(tmp_path / "m.jsonl", records), lint.NEAR_DUPLICATE) == []


@pytest.mark.parametrize(
    ("prompt", "response", "expected"),
    [
        ("What is the capital of France?", "What is the capital of France", True),
        ("Convert 3 cups of rice to grams.", "3 cups of rice to grams.", True),
        ("Hi", "hi!", True),
        ("What is the capital of France?", "The capital of France is Paris.", False),
        ("Is Paris or Lyon the capital of France?", "Paris", False),
        ("Sort these: pear apple fig", "apple fig pear", False),
        ("Question?", "", False),
    ],
)
def test_repeats_prompt(prompt, response, expected):
    assert repeats_prompt(prompt, response) is expected


def test_response_repeating_the_prompt_is_a_warning(tmp_path):
    records = distinct_records(3)
    records[1] = chat("Convert 3 cups of rice to grams.", "Convert 3 cups of rice to grams.")
    [found] = issues(write_jsonl(tmp_path / "m.jsonl", records), lint.RESPONSE_REPEATS_PROMPT)
    assert (found.severity, found.lines) == ("warning", (2,))


def test_over_long_examples_use_the_given_tokenizer(tmp_path):
    records = [chat("one two three", "four five"), chat("a " * 50, "b"), chat("c", "d " * 30)]
    path = write_jsonl(tmp_path / "m.jsonl", records)

    def words(text: str) -> int:
        return len(text.split())

    # Turn overhead is 4 tokens: 50 + 1 + 8 = 59 and 1 + 30 + 8 = 39 tokens.
    [found] = issues(path, lint.TOO_LONG, count_tokens=words, tokenizer="words", max_tokens=40)
    assert (found.severity, found.lines) == ("warning", (2,))
    assert "40 tokens (words; the longest has 59)" in found.message
    assert lines_of(path, lint.TOO_LONG, count_tokens=words, max_tokens=59) == []


def test_over_long_examples_without_a_tokenizer_use_four_characters_per_token(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [chat("x" * 400, "y" * 4), chat("x" * 399, "y")])
    # ceil(400/4) + 1 + 8 = 109 tokens, and ceil(399/4) + 1 + 8 = 109 as well.
    prepared = prepare_dataset(path, max_tokens=108)
    assert [e.token_count for e in prepared.examples] == [109, 109]
    [found] = [i for i in prepared.issues if i.code == lint.TOO_LONG]
    assert found.lines == (1, 2)
    assert "chars/4" in found.message


def test_invalid_utf8_and_lone_surrogates_are_errors(tmp_path):
    path = tmp_path / "m.jsonl"
    lines = [json.dumps(r).encode() for r in distinct_records(4)]
    lines[1] = lines[1].replace(b"?", b"\xff?", 1)
    lines[3] = (
        b'{"messages": [{"role": "user", "content": "broken \\ud800 half"}, '
        b'{"role": "assistant", "content": "a"}]}'
    )
    path.write_bytes(b"\n".join(lines))
    [found] = issues(path, lint.INVALID_UTF8)
    assert (found.severity, found.lines) == ("error", (2, 4))


def test_control_characters_are_errors_but_tabs_and_newlines_are_not(tmp_path):
    records = distinct_records(4)
    records[0]["messages"][1]["content"] = "tab\there\nnew line\r\n"
    records[1]["messages"][0]["content"] = "\x1b[1mbold\x1b[0m"
    records[3]["messages"][1]["content"] = "page\x0cbreak"
    [found] = issues(write_jsonl(tmp_path / "m.jsonl", records), lint.CONTROL_CHARACTERS)
    assert (found.severity, found.lines) == ("error", (2, 4))


@pytest.mark.parametrize(
    ("count", "codes"),
    [
        (99, {"too-few-examples": "warning", "dataset-size": "info"}),
        (100, {"dataset-size": "info"}),
        (999, {"dataset-size": "info"}),
        (1000, {}),
        (5000, {}),
        (5001, {"dataset-size": "info"}),
    ],
)
def test_dataset_size(count, codes):
    assert {i.code: i.severity for i in lint.dataset_size(count)} == codes


def test_too_few_examples_mentions_the_sweet_spot(tmp_path):
    [found] = issues(write_jsonl(tmp_path / "m.jsonl", distinct_records(40)), lint.TOO_FEW_EXAMPLES)
    assert found.message == lint.MSG_TOO_FEW.format(n=40, minimum=100)
    assert found.lines == ()


def test_leakage_from_splits_given_by_the_file(tmp_path):
    records = [dict(r, split="train") for r in distinct_records(8)]
    records[5] = dict(records[0], split="test")  # identical
    records[6] = chat(records[1]["messages"][0]["content"], "Another answer.", split="validation")
    path = write_jsonl(tmp_path / "m.jsonl", records)
    found = issues(path, lint.SPLIT_LEAKAGE)
    assert [(i.severity, i.lines) for i in found] == [("error", (1, 6)), ("error", (2, 7))]
    assert found[0].message == lint.MSG_LEAKAGE.format(
        split="test", source="train", train_line=1, how="identical"
    )
    assert "same prompt" in found[1].message
    assert lines_of(path, lint.SPLIT_FROM_FILE) == [()]


def test_issues_are_ordered_by_severity_then_line(tmp_path):
    records = distinct_records(5)
    records[4] = records[3]
    records[2]["messages"][1]["content"] = ""
    prepared = prepare_dataset(write_jsonl(tmp_path / "m.jsonl", records))
    assert [i.severity for i in prepared.issues] == sorted(
        (i.severity for i in prepared.issues), key=lint.SEVERITIES.index
    )
    assert prepared.issues[0].code == lint.EMPTY_TURN


def test_a_test_example_copying_a_feedback_example_is_leakage(tmp_path):
    records = [dict(r, split="train") for r in distinct_records(8)]
    records[2] = dict(records[2], split="feedback")
    records[6] = dict(records[2], split="test")  # identical to a feedback example
    records[7] = dict(records[7], split="feedback")
    path = write_jsonl(tmp_path / "m.jsonl", records)
    found = issues(path, lint.SPLIT_LEAKAGE)
    assert [(i.severity, i.lines) for i in found] == [("error", (3, 7))]
    assert found[0].message == lint.MSG_LEAKAGE.format(
        split="test", source="feedback", train_line=3, how="identical"
    )
