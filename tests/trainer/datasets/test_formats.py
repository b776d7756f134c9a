"""The layouts teams start from: transcripts in a text field (Guanaco, HH), preference pairs,
Dolly, named fields, Parquet files and save_to_disk folders; and their refusals."""

import json

import pytest

from trainer.datasets import MalformedRecord, MissingField, ReadOptions, UnknownFormat
from trainer.datasets import prepare_dataset as prepare
from trainer.datasets.errors import (
    BROKEN_JSON,
    FIELD_NOT_TEXT,
    MISSING_FIELD,
    MISSING_TABLE_COLUMN,
    NOT_SAVED_DATASET,
    PAIR_ONLY_ANSWER,
    PAIR_PROMPTS_DIFFER,
    SPLIT_FOLDER_UNKNOWN,
    TEXT_NO_SPEAKERS,
    TRUNCATED_JSON,
)
from trainer.datasets.lint import MARKER_IN_TURN, MIXED_SPEAKER_LABELS
from trainer.datasets.transcript import split_transcript

from .helpers import write_jsonl, write_parquet, write_saved_dataset

GUANACO = (
    "### Human: Can you convert 1 cup to ml?### Assistant: 237 ml.### Human: And 2 cups?"
    "### Assistant: 473 ml."
)
HH_CHOSEN = "\n\nHuman: How many grams in an ounce?\n\nAssistant: About 28.35 g."
HH_REJECTED = "\n\nHuman: How many grams in an ounce?\n\nAssistant: Ask someone else."


def turns(*pairs):
    return [{"role": role, "content": content} for role, content in pairs]


def test_a_guanaco_text_keeps_every_exchange_as_turns(tmp_path):
    prepared = prepare(write_jsonl(tmp_path / "g.jsonl", [{"text": GUANACO}]))
    assert prepared.format == "transcript"
    assert prepared.examples[0].messages == turns(
        ("user", "Can you convert 1 cup to ml?"),
        ("assistant", "237 ml."),
        ("user", "And 2 cups?"),
        ("assistant", "473 ml."),
    )


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        (HH_CHOSEN, ("Human", "Assistant")),
        ("User: 1 lb in g?\nAssistant: 454 g.", ("User", "Assistant")),
        ("You convert units.\n### User: 1 lb?\n### Bot: 454 g.", ("system", "### User", "### Bot")),
    ],
)
def test_marker_styles_are_detected_from_the_text(text, labels):
    messages, found = split_transcript(text)
    assert found == labels
    assert messages[-1]["role"] == "assistant" and messages[-1]["content"].endswith("g.")


def test_a_text_without_speaker_markers_is_refused_naming_line_and_field(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", [{"text": GUANACO}, {"text": "just prose"}])
    with pytest.raises(MalformedRecord) as caught:
        prepare(path)
    assert (caught.value.line, caught.value.message) == (2, TEXT_NO_SPEAKERS.format(field="text"))


def test_mixed_markers_across_text_fields_are_reported_by_line(tmp_path):
    records = [{"text": GUANACO}] * 3 + [{"text": "User: 1 oz?\nAssistant: 28 g."}]
    records[1] = {"text": GUANACO.replace("1 cup", "3 cups")}
    records[2] = {"text": GUANACO.replace("1 cup", "4 cups")}
    issues = prepare(write_jsonl(tmp_path / "g.jsonl", records)).issues
    mixed = [i for i in issues if i.code == MIXED_SPEAKER_LABELS]
    assert [i.lines for i in mixed] == [(4,), (4,)]
    assert "'### Human' (6), 'User' (1)" in mixed[0].message


def test_a_marker_left_inside_a_turn_is_reported(tmp_path):
    broken = "### Human: 1 cup in ml?### Assistant: 237 ml.\nUser: and 2?"
    issues = prepare(write_jsonl(tmp_path / "g.jsonl", [{"text": GUANACO}, {"text": broken}]))
    [issue] = [i for i in issues.issues if i.code == MARKER_IN_TURN]
    assert issue.lines == (2,) and "'User:'" in issue.message


def test_hh_pairs_keep_the_chosen_conversation_and_the_rejected_answer(tmp_path):
    path = write_jsonl(tmp_path / "hh.jsonl", [{"chosen": HH_CHOSEN, "rejected": HH_REJECTED}])
    prepared = prepare(path)
    assert prepared.format == "pairs" and prepared.pairs == 1
    [example] = prepared.examples
    assert example.messages == turns(
        ("user", "How many grams in an ounce?"), ("assistant", "About 28.35 g.")
    )
    assert example.rejected == "Ask someone else."


def test_dpo_pairs_answer_the_prompt_field(tmp_path):
    record = {"prompt": "1 oz in g?", "chosen": "28.35 g.", "rejected": "Ten."}
    [example] = prepare(write_jsonl(tmp_path / "p.jsonl", [record])).examples
    assert example.messages == turns(("user", "1 oz in g?"), ("assistant", "28.35 g."))
    assert example.rejected == "Ten."


def test_a_pair_changes_the_dataset_hash_when_only_the_rejected_answer_differs(tmp_path):
    one = prepare(
        write_jsonl(tmp_path / "a.jsonl", [{"chosen": HH_CHOSEN, "rejected": HH_REJECTED}])
    )
    other = HH_REJECTED.replace("someone else", "me")
    two = prepare(write_jsonl(tmp_path / "b.jsonl", [{"chosen": HH_CHOSEN, "rejected": other}]))
    assert one.content_hash != two.content_hash


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"chosen": HH_CHOSEN}, MISSING_FIELD.format(field="rejected", format="pairs")),
        (
            {"chosen": "28 g.", "rejected": "Ten."},
            PAIR_ONLY_ANSWER.format(field="chosen", prompt="prompt"),
        ),
        (
            {"chosen": HH_CHOSEN, "rejected": HH_REJECTED.replace("an ounce", "a pound")},
            PAIR_PROMPTS_DIFFER,
        ),
    ],
)
def test_broken_pairs_are_refused_naming_the_line_and_field(tmp_path, record, message):
    path = write_jsonl(
        tmp_path / "hh.jsonl", [{"chosen": HH_CHOSEN, "rejected": HH_REJECTED}, record]
    )
    with pytest.raises((MalformedRecord, MissingField)) as caught:
        prepare(path)
    assert (caught.value.line, caught.value.message) == (2, message)


def test_dolly_keeps_the_context_with_the_instruction(tmp_path):
    record = {
        "instruction": "How much flour is in the recipe?",
        "context": "The recipe uses 250 g of flour and 2 eggs.",
        "response": "250 g.",
        "category": "closed_qa",
    }
    prepared = prepare(write_jsonl(tmp_path / "d.jsonl", [record]))
    assert prepared.format == "dolly"
    assert prepared.examples[0].messages == turns(
        ("user", "How much flour is in the recipe?\n\nThe recipe uses 250 g of flour and 2 eggs."),
        ("assistant", "250 g."),
    )


def test_named_fields_read_any_json_layout(tmp_path):
    path = write_jsonl(tmp_path / "q.jsonl", [{"q": "1 oz?", "a": "28 g.", "sys": "Be brief."}])
    options = ReadOptions(prompt_field="q", response_field="a", system_field="sys")
    [example] = prepare(path, options=options).examples
    assert example.messages == turns(
        ("system", "Be brief."), ("user", "1 oz?"), ("assistant", "28 g.")
    )


def test_a_named_messages_field_is_read_as_turns(tmp_path):
    record = {"dialog": turns(("user", "1 oz?"), ("assistant", "28 g."))}
    path = write_jsonl(tmp_path / "m.jsonl", [record])
    [example] = prepare(path, options=ReadOptions(messages_field="dialog")).examples
    assert example.messages == record["dialog"]


def test_an_unknown_layout_names_the_fields_and_the_flags(tmp_path):
    with pytest.raises(UnknownFormat) as caught:
        prepare(write_jsonl(tmp_path / "q.jsonl", [{"question": "1 oz?", "answer": "28 g."}]))
    message = caught.value.message
    assert "'question', 'answer'" in message and "--prompt-field" in message


def test_a_truncated_json_line_is_reported_where_it_is_cut_off(tmp_path):
    path = tmp_path / "cut.jsonl"
    whole = json.dumps({"instruction": "1 oz?", "output": "28 g."})
    path.write_text(whole + "\n" + whole[:20] + "\n")
    with pytest.raises(MalformedRecord) as caught:
        prepare(path)
    assert caught.value.line == 2
    detail = TRUNCATED_JSON.format(column=20, detail="Unterminated string starting at column 17")
    assert caught.value.message == BROKEN_JSON.format(detail=detail)


def test_a_broken_json_line_names_the_column_of_the_fault(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"instruction": "1 oz?" "output": "28 g."}\n')
    with pytest.raises(MalformedRecord) as caught:
        prepare(path)
    assert caught.value.message == BROKEN_JSON.format(detail="Expecting ',' delimiter at column 25")


# Parquet and save_to_disk folders.


def test_parquet_of_messages_structs_is_read_row_by_row(tmp_path):
    conversation = turns(("user", "1 oz?"), ("assistant", "28 g."))
    path = write_parquet(tmp_path / "m.parquet", {"messages": [conversation, conversation[:1]]})
    prepared = prepare(path)
    assert prepared.format == "parquet/messages"
    assert prepared.examples[0].messages == conversation
    assert [e.line for e in prepared.examples] == [1, 2]


def test_parquet_with_named_columns(tmp_path):
    path = write_parquet(tmp_path / "q.parquet", {"question": ["1 oz?"], "answer": ["28 g."]})
    options = ReadOptions(prompt_field="question", response_field="answer")
    prepared = prepare(path, options=options)
    assert prepared.format == "parquet/fields"
    assert prepared.examples[0].messages == turns(("user", "1 oz?"), ("assistant", "28 g."))


def test_parquet_without_the_named_columns_is_refused_naming_file_row_and_column(tmp_path):
    path = write_parquet(tmp_path / "q.parquet", {"question": ["1 oz?"], "answer": ["28 g."]})
    with pytest.raises(MissingField) as caught:
        prepare(path, options=ReadOptions(prompt_field="prompt", response_field="answer"))
    error = caught.value
    assert (error.file, error.row) == (str(path), 1)
    assert error.message == MISSING_TABLE_COLUMN.format(
        column="prompt", columns=["question", "answer"]
    )
    assert str(error).startswith(f"{path}: row 1: ")


def test_a_bad_parquet_row_is_named_by_row_and_field(tmp_path):
    path = write_parquet(tmp_path / "p.parquet", {"prompt": ["a?", None], "response": ["b", "c"]})
    with pytest.raises(MalformedRecord) as caught:
        prepare(path)
    assert (caught.value.row, caught.value.line) == (2, None)
    assert caught.value.message == FIELD_NOT_TEXT.format(field="prompt", kind="null")


def test_a_truncated_parquet_file_is_refused(tmp_path):
    whole = write_parquet(tmp_path / "w.parquet", {"prompt": ["a?"] * 50, "response": ["b"] * 50})
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(MalformedRecord) as caught:
        prepare(cut)
    assert caught.value.file == str(cut) and caught.value.message.startswith(
        "cannot read the Parquet"
    )


def test_a_saved_dataset_folder_is_read(tmp_path):
    folder = write_saved_dataset(
        tmp_path / "hh", {"chosen": [HH_CHOSEN] * 2, "rejected": [HH_REJECTED] * 2}
    )
    prepared = prepare(folder)
    assert prepared.format == "arrow/pairs" and prepared.pairs == 2


def test_a_saved_dataset_dict_keeps_its_splits(tmp_path):
    dolly = {"instruction": ["a?"], "context": ["ctx"], "response": ["b"]}
    folder = write_saved_dataset(
        tmp_path / "d", {}, train=dolly, test={k: [v[0] + "2"] for k, v in dolly.items()}
    )
    prepared = prepare(folder)
    assert prepared.split_source == "file"
    assert [e.split for e in prepared.examples] == ["train", "test"]
    assert prepared.examples[0].messages[0]["content"] == "a?\n\nctx"


def test_a_saved_dataset_dict_with_other_split_names_is_refused(tmp_path):
    folder = write_saved_dataset(tmp_path / "u", {}, train_sft={"text": ["User: a\nAssistant: b"]})
    with pytest.raises(MalformedRecord) as caught:
        prepare(folder)
    assert caught.value.message == SPLIT_FOLDER_UNKNOWN.format(
        split="train_sft", folder=str(folder / "train_sft")
    )


def test_a_folder_that_is_no_saved_dataset_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnknownFormat) as caught:
        prepare(tmp_path / "empty")
    assert caught.value.message == NOT_SAVED_DATASET


def test_a_truncated_arrow_file_is_refused(tmp_path):
    folder = write_saved_dataset(tmp_path / "t", {"text": ["User: a\nAssistant: b"] * 200})
    data = folder / "data-00000-of-00001.arrow"
    data.write_bytes(data.read_bytes()[:-200])
    with pytest.raises(MalformedRecord) as caught:
        prepare(folder)
    assert caught.value.file == str(folder) and "data-00000-of-00001.arrow" in caught.value.message
