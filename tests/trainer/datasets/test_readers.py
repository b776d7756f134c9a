import json
import tracemalloc

import pytest

from trainer.datasets import DatasetReader, ReadOptions, errors, json_stream, source
from trainer.datasets.errors import (
    EmptyDataset,
    MalformedRecord,
    MissingField,
    NotText,
    UnknownFormat,
)

from .helpers import chat, write_jsonl


def read(path, **options):
    reader = DatasetReader(path, ReadOptions(**options))
    return reader, list(reader)


def conversation(*turns):
    return [{"role": role, "content": content} for role, content in turns]


def test_alpaca_jsonl_joins_instruction_and_input_and_keeps_a_system_prompt(tmp_path):
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {"instruction": "Translate", "input": "chat", "output": "cat", "system": "Be brief."},
            {"instruction": "Say hi", "input": "", "output": "hi"},
        ],
    )
    reader, examples = read(path)
    assert reader.format == "alpaca"
    assert examples[0].messages == conversation(
        ("system", "Be brief."), ("user", "Translate\n\nchat"), ("assistant", "cat")
    )
    assert examples[1].messages == conversation(("user", "Say hi"), ("assistant", "hi"))
    assert [e.line for e in examples] == [1, 2]
    assert examples[0].labels == ()


def test_alpaca_json_array_reports_the_line_where_each_element_starts(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(
        '[\n  {"instruction": "one",\n   "output": "1"},\n\n  {"instruction": "two", '
        '"output": "2"}\n]\n'
    )
    reader, examples = read(path)
    assert reader.format == "alpaca"
    assert [e.line for e in examples] == [2, 5]
    assert examples[1].messages == conversation(("user", "two"), ("assistant", "2"))


def test_sharegpt_maps_speaker_labels_to_roles_and_keeps_the_labels(tmp_path):
    record = {
        "system": "You convert units.",
        "conversations": [{"from": "human", "value": "1 cup?"}, {"from": "gpt", "value": "237 ml"}],
    }
    reader, [example] = read(write_jsonl(tmp_path / "s.jsonl", [record]))
    assert reader.format == "sharegpt"
    assert example.messages == conversation(
        ("system", "You convert units."), ("user", "1 cup?"), ("assistant", "237 ml")
    )
    assert example.labels == ("system", "human", "gpt")


def test_openai_messages_accept_text_parts(tmp_path):
    record = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
            {"role": "assistant", "content": "c"},
        ]
    }
    reader, [example] = read(write_jsonl(tmp_path / "m.jsonl", [record]))
    assert reader.format == "messages"
    assert example.messages == conversation(("user", "a\nb"), ("assistant", "c"))


def test_csv_with_a_quoted_multiline_field_keeps_source_lines(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('prompt,response\n"two\nlines",ok\nsecond,fine\n', newline="")
    reader, examples = read(path)
    assert reader.format == "csv"
    assert [e.line for e in examples] == [2, 4]
    assert examples[0].messages == conversation(("user", "two\nlines"), ("assistant", "ok"))


def test_csv_header_names_are_configurable_and_a_system_column_is_used(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("Question;Answer;system\nq1;a1;Be kind.\n")
    reader, [example] = read(path, prompt_field="question", response_field="answer")
    assert reader.format == "csv"
    assert example.messages == conversation(
        ("system", "Be kind."), ("user", "q1"), ("assistant", "a1")
    )


def test_tsv_by_extension(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("prompt\tresponse\nq, with comma\ta\n")
    _, [example] = read(path)
    assert example.messages[0]["content"] == "q, with comma"


def test_transcripts_split_on_blank_lines_and_keep_continuation_lines(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("User: hi\nAssistant: hello\nsecond line\n\n\nHuman: bye\nAI: ciao\n")
    reader, examples = read(path)
    assert reader.format == "text"
    assert examples[0].messages == conversation(("user", "hi"), ("assistant", "hello\nsecond line"))
    assert examples[1].labels == ("Human", "AI")
    assert [e.turn_lines for e in examples] == [(1, 2), (6, 7)]


def test_transcripts_with_separator_lines_keep_blank_lines_inside_turns(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("User: q\nAssistant: para one\n\npara two\n---\nUser: q2\nAssistant: a2\n")
    _, examples = read(path)
    assert len(examples) == 2
    assert examples[0].messages[1]["content"] == "para one\n\npara two"
    assert examples[1].line == 6


def test_an_explicit_format_overrides_detection(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [chat("q", "a")])
    with pytest.raises(MissingField) as caught:
        read(path, format="alpaca")
    assert caught.value.line == 1
    assert caught.value.message == errors.MISSING_FIELD.format(field="instruction", format="alpaca")


def test_an_unknown_format_name_is_refused(tmp_path):
    with pytest.raises(UnknownFormat):
        DatasetReader(tmp_path / "x", ReadOptions(format="yaml"))


def test_bom_and_crlf_are_handled(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(chat("q", "a")).encode() + b"\r\n")
    _, [example] = read(path)
    assert example.messages == conversation(("user", "q"), ("assistant", "a"))


def test_invalid_utf8_is_replaced_and_its_line_remembered(tmp_path):
    path = tmp_path / "m.jsonl"
    good = json.dumps(chat("q", "a")).encode()
    path.write_bytes(good + b"\n" + good.replace(b'"q"', b'"caf\xe9"') + b"\n")
    reader, examples = read(path)
    assert examples[1].messages[0]["content"] == "caf\ufffd"
    assert reader.invalid_utf8_lines == [2]


# Malformed input: a named error with the file and the 1-based line.


def test_broken_json_names_the_file_and_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(chat("q", "a")) + "\n\n" + '{"messages": [\n')
    with pytest.raises(MalformedRecord) as caught:
        read(path)
    assert (caught.value.file, caught.value.line) == (str(path), 3)
    assert caught.value.message.startswith("broken JSON")
    assert str(caught.value).startswith(f"{path}: line 3: broken JSON")


def test_examples_stream_before_a_later_line_breaks(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(chat("q", "a")) + "\nnot json\n")
    examples = iter(DatasetReader(path))
    assert next(examples).line == 1
    with pytest.raises(MalformedRecord):
        next(examples)


def test_missing_field_names_the_line_and_field(tmp_path):
    path = write_jsonl(
        tmp_path / "a.jsonl", [{"instruction": "a", "output": "b"}, {"instruction": "c"}]
    )
    with pytest.raises(MissingField) as caught:
        read(path)
    assert caught.value.line == 2
    assert caught.value.message == errors.MISSING_FIELD.format(field="output", format="alpaca")


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", EmptyDataset),
        (b"\n  \n\t\n", EmptyDataset),
        (b"[]", EmptyDataset),
        (b"prompt,response\n", EmptyDataset),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", NotText),
        (bytes(range(128, 256)) * 4, NotText),
        (b"hello world\n", UnknownFormat),
        (b'{"body": "a"}\n', UnknownFormat),
        (b'{"text": "a"}\n', MalformedRecord),  # a transcript without speaker markers
    ],
)
def test_unusable_files_raise_named_errors(tmp_path, content, error):
    path = tmp_path / "input.data"
    path.write_bytes(content)
    with pytest.raises(error) as caught:
        read(path)
    assert caught.value.file == str(path)


def test_unknown_role_is_malformed(tmp_path):
    record = {"messages": [{"role": "tool", "content": "x"}]}
    with pytest.raises(MalformedRecord, match="unknown role 'tool'"):
        read(write_jsonl(tmp_path / "m.jsonl", [record]))


def test_wrong_types_are_malformed(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "a", "output": 3}])
    with pytest.raises(MalformedRecord) as caught:
        read(path)
    assert caught.value.message == errors.FIELD_NOT_TEXT.format(field="output", kind="int")


@pytest.mark.parametrize(
    ("text", "line", "start"),
    [
        ('[\n{"instruction": "a", "output": "b"}\n', 3, errors.ARRAY_UNCLOSED),
        ('[{"instruction": "a", "output": "b"}]\n\nextra', 3, "unexpected content after"),
        ('[\n{"instruction": "a", "output": "b"} {"x": 1}]', 2, "expected ','"),
        ('[\n{"instruction": "a", "output": "b"},\n 3]', 3, "expected a JSON object"),
        ('[\n{"instruction": "a",\n "output": }]', 3, "broken JSON"),
    ],
)
def test_malformed_json_arrays_name_the_line(tmp_path, text, line, start):
    path = tmp_path / "a.json"
    path.write_text(text)
    with pytest.raises(MalformedRecord) as caught:
        read(path)
    assert caught.value.line == line
    assert caught.value.message.startswith(start)


def test_csv_missing_column_and_short_row(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("prompt,answer\nq,a\n")
    with pytest.raises(MissingField) as caught:
        read(path)
    assert caught.value.line == 1
    path.write_text("prompt,response\nq,a\nonly one field\n")
    with pytest.raises(MalformedRecord) as caught:
        read(path)
    assert caught.value.line == 3
    assert caught.value.message == errors.CSV_SHORT_ROW.format(found=1, expected=2)


def test_transcript_that_does_not_start_with_a_speaker(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("User: q\nAssistant: a\n\nno speaker here\n")
    with pytest.raises(MalformedRecord) as caught:
        read(path, format="text")
    assert caught.value.line == 4


def test_split_field_on_some_records_only_is_refused(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [chat("q", "a", split="test"), chat("r", "b")])
    with pytest.raises(MalformedRecord) as caught:
        read(path)
    assert (caught.value.line, caught.value.message) == (2, errors.SPLIT_FIELD_MIXED)


def test_split_field_values_and_aliases(tmp_path):
    path = write_jsonl(
        tmp_path / "m.jsonl", [chat("q", "a", split="dev"), chat("r", "b", split="TRAIN")]
    )
    _, examples = read(path)
    assert [e.file_split for e in examples] == ["validation", "train"]
    write_jsonl(path, [chat("q", "a", split="holdout")])
    with pytest.raises(MalformedRecord, match="unknown split 'holdout'"):
        read(path)


# Streaming: pieces smaller than one record, and a bounded record size.


@pytest.fixture
def small_pieces(monkeypatch):
    monkeypatch.setattr(source, "PIECE_BYTES", 16)
    monkeypatch.setattr(json_stream, "PIECE_BYTES", 16)


def test_a_minified_json_array_is_read_in_pieces_with_correct_lines(tmp_path, small_pieces):
    records = [{"instruction": f"instruction {n} " * 5, "output": f"out {n}"} for n in range(30)]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(records))
    _, examples = read(path)
    assert [e.messages[1]["content"] for e in examples] == [f"out {n}" for n in range(30)]
    assert {e.line for e in examples} == {1}
    path.write_text(json.dumps(records, indent=1))
    _, examples = read(path)
    assert [e.line for e in examples] == [2 + 4 * n for n in range(30)]


def test_the_array_buffer_stays_about_one_element_long(tmp_path, monkeypatch):
    monkeypatch.setattr(source, "PIECE_BYTES", 64)
    monkeypatch.setattr(json_stream, "PIECE_BYTES", 64)
    longest = []
    fill = json_stream._ArrayBuffer.fill

    def watched(buffer, at_least):
        grew = fill(buffer, at_least)
        longest.append(len(buffer.text))
        return grew

    monkeypatch.setattr(json_stream._ArrayBuffer, "fill", watched)
    records = [{"instruction": f"instruction number {n}", "output": "x" * 80} for n in range(300)]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(records))  # one line of about 36,000 characters
    assert len(read(path)[1]) == 300
    assert max(longest) < 4 * 130


def test_reading_a_minified_array_never_holds_the_whole_file(tmp_path, monkeypatch):
    monkeypatch.setattr(source, "PIECE_BYTES", 4096)
    monkeypatch.setattr(json_stream, "PIECE_BYTES", 4096)
    records = [
        {"instruction": f"question {n} " + "w" * 150, "output": "x" * 150} for n in range(6000)
    ]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(records))  # about 2 MB on one line
    tracemalloc.start()
    try:
        assert sum(1 for _ in DatasetReader(path)) == 6000
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < path.stat().st_size / 4


def test_long_jsonl_lines_are_reassembled_from_pieces(tmp_path, small_pieces):
    path = write_jsonl(tmp_path / "m.jsonl", [chat("é" * 100, "ü" * 100), chat("q", "a")])
    _, examples = read(path)
    assert examples[0].messages[0]["content"] == "é" * 100
    assert examples[1].line == 2


def test_a_record_larger_than_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(source, "MAX_RECORD_BYTES", 1000)
    monkeypatch.setattr(json_stream, "MAX_RECORD_BYTES", 1000)
    monkeypatch.setattr(source, "PIECE_BYTES", 100)
    monkeypatch.setattr(json_stream, "PIECE_BYTES", 100)
    path = write_jsonl(tmp_path / "m.jsonl", [chat("q", "a"), chat("x" * 2000, "a")])
    with pytest.raises(MalformedRecord) as caught:
        read(path)
    assert caught.value.line == 2
    assert caught.value.message == errors.RECORD_TOO_LARGE.format(limit_mb=0)
    path = tmp_path / "a.json"
    path.write_text(json.dumps([{"instruction": "x" * 3000, "output": "y"}]))
    with pytest.raises(MalformedRecord, match="larger than"):
        read(path)
