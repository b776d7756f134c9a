"""Each reader on its own, fed records that are almost right: wrong types, unknown roles, lone
surrogates, every line ending, a byte-order mark, broken containers, deep nesting, one record
over the size limit. Reading and linting end in a report or a *named* error with file and line.

test_properties.py throws random bytes and random JSON at the pipeline; this module aims at the
edges of each format, and at the split options.
"""

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainer.datasets import (
    DatasetError,
    EmptyDataset,
    InvalidSplit,
    MalformedRecord,
    MissingField,
    NotText,
    PreparedDataset,
    ReadOptions,
    UnknownFormat,
    prepare_dataset,
)
from trainer.datasets.errors import RECORD_TOO_LARGE, TOO_DEEP
from trainer.datasets.lint import CODES
from trainer.datasets.source import MAX_RECORD_BYTES

NAMED_ERRORS = (EmptyDataset, NotText, MalformedRecord, MissingField, UnknownFormat)
FAST = settings(
    max_examples=int(os.environ.get("EVALHUB_HYPOTHESIS_EXAMPLES", "60")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Text that includes lone surrogates (JSON can carry them as \udXXX escapes), controls,
# right-to-left overrides and the odd emoji.
ANY_CHAR = st.characters(codec=None, exclude_categories=())
TEXT = st.text(ANY_CHAR, max_size=30)
SCALAR = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
MAYBE_TEXT = st.one_of(TEXT, TEXT, SCALAR, st.lists(TEXT, max_size=2), st.just({}))
ROLE = st.sampled_from(["user", "assistant", "system", "Human", "gpt", "bot", "tool", ""]) | TEXT
SPLIT = st.sampled_from(["train", "test", "val", "dev", "holdout", ""]) | SCALAR


def _optional(**fields):
    """Dictionaries in which every given field may be missing."""
    return st.fixed_dictionaries({}, optional=fields)


ALPACA = st.fixed_dictionaries(
    {"instruction": MAYBE_TEXT, "output": MAYBE_TEXT},
    optional={"input": MAYBE_TEXT, "system": MAYBE_TEXT, "split": SPLIT},
)
SHAREGPT_TURN = _optional(**{"from": ROLE | SCALAR, "value": MAYBE_TEXT})
SHAREGPT = st.fixed_dictionaries(
    {"conversations": st.lists(SHAREGPT_TURN | SCALAR, max_size=4) | SCALAR},
    optional={"system": MAYBE_TEXT, "split": SPLIT},
)
CONTENT_PART = _optional(type=st.sampled_from(["text", "image_url"]) | TEXT, text=MAYBE_TEXT)
MESSAGE = _optional(role=ROLE | SCALAR, content=MAYBE_TEXT | st.lists(CONTENT_PART, max_size=3))
MESSAGES = st.fixed_dictionaries(
    {"messages": st.lists(MESSAGE | SCALAR, max_size=4) | SCALAR}, optional={"split": SPLIT}
)
MARKED_TEXT = (
    st.lists(
        st.tuples(
            st.sampled_from(
                ["### Human:", "### Assistant:", "\n\nHuman:", "\n\nAssistant:", "User:"]
            ),
            TEXT,
        ),
        max_size=4,
    ).map(lambda turns: "".join(marker + " " + text for marker, text in turns))
    | TEXT
)
TRANSCRIPT = st.fixed_dictionaries({"text": MARKED_TEXT | SCALAR}, optional={"split": SPLIT})
PAIRS = st.fixed_dictionaries(
    {"chosen": MARKED_TEXT | st.lists(MESSAGE, max_size=3) | SCALAR},
    optional={"rejected": MARKED_TEXT | SCALAR, "prompt": MAYBE_TEXT, "split": SPLIT},
)
DOLLY = st.fixed_dictionaries(
    {"instruction": MAYBE_TEXT, "response": MAYBE_TEXT},
    optional={"context": MAYBE_TEXT, "category": MAYBE_TEXT},
)
RECORDS = {
    "alpaca": ALPACA,
    "sharegpt": SHAREGPT,
    "messages": MESSAGES,
    "transcript": TRANSCRIPT,
    "pairs": PAIRS,
    "dolly": DOLLY,
}
LINE_ENDINGS = st.sampled_from(["\n", "\r\n", "\r", "\n\n"])


def outcome(data: bytes, suffix: str, options: ReadOptions | None, **kwargs):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(data)
        try:
            result = prepare_dataset(path, options=options, **kwargs)
        except DatasetError as error:
            assert isinstance(error, NAMED_ERRORS), type(error)
            assert error.file == str(path) and error.message
            assert error.line is None or error.line >= 1
            return error
    assert isinstance(result, PreparedDataset)
    assert result.examples
    assert sum(result.counts.values()) == len(result.examples)
    for issue in result.issues:
        assert issue.code in CODES
        assert all(line >= 1 for line in issue.lines)
    for example in result.examples:
        roles = [m["role"] for m in example.messages]
        assert set(roles) <= {"system", "user", "assistant"}
        assert all(isinstance(m["content"], str) for m in example.messages)
    return result


def _encode(text: str, bom: bool) -> bytes:
    data = text.encode("utf-8", "surrogatepass")  # lone surrogates become invalid UTF-8
    return b"\xef\xbb\xbf" + data if bom else data


@FAST
@given(
    st.sampled_from(sorted(RECORDS)).flatmap(
        lambda fmt: st.tuples(st.just(fmt), st.lists(RECORDS[fmt], min_size=1, max_size=5))
    ),
    st.sampled_from(["jsonl", "array", "array-one-line"]),
    LINE_ENDINGS,
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_each_json_format_with_almost_right_records(
    fmt_records, container, newline, ascii_only, bom, explicit
):
    fmt, records = fmt_records
    if container == "jsonl":
        text = newline.join(json.dumps(r, ensure_ascii=ascii_only) for r in records)
    else:
        indent = None if container == "array-one-line" else 1
        text = json.dumps(records, ensure_ascii=ascii_only, indent=indent).replace("\n", newline)
    options = ReadOptions(format=fmt) if explicit else None
    outcome(_encode(text, bom), ".jsonl", options)


@FAST
@given(
    st.sampled_from(sorted(RECORDS)),
    st.sampled_from(sorted(RECORDS)),
    st.lists(st.sampled_from(sorted(RECORDS)), min_size=1, max_size=3),
)
def test_a_format_forced_onto_records_of_another(forced, _, kinds):
    samples = {
        "alpaca": {"instruction": "Hi?", "output": "Hello."},
        "sharegpt": {"conversations": [{"from": "human", "value": "Hi?"}]},
        "messages": {"messages": [{"role": "user", "content": "Hi?"}]},
        "transcript": {"text": "### Human: Hi?### Assistant: Hello."},
        "pairs": {"chosen": "\n\nHuman: Hi?\n\nAssistant: Hello.", "rejected": "x"},
        "dolly": {"instruction": "Hi?", "context": "", "response": "Hello."},
    }
    text = "\n".join(json.dumps(samples[k]) for k in kinds)
    outcome(text.encode(), ".jsonl", ReadOptions(format=forced))


CSV_CELL = st.text(ANY_CHAR, max_size=15) | st.sampled_from(['"', '""', '"a"b', "\n", "\r", "a,b"])


@FAST
@given(
    st.lists(st.lists(CSV_CELL, max_size=5), max_size=6),
    st.sampled_from([",", "\t", ";"]),
    st.sampled_from([".csv", ".tsv", ".txt"]),
    st.sampled_from(["prompt", "question", "Prompt "]),
    LINE_ENDINGS,
    st.booleans(),
)
def test_csv_and_tsv_with_odd_cells_quotes_and_columns(rows, sep, suffix, column, newline, bom):
    header = sep.join(["prompt", "response", "system", "split"])
    body = newline.join(sep.join(row) for row in rows)
    options = ReadOptions(format="csv", prompt_field=column)
    outcome(_encode(header + newline + body, bom), suffix, options)


TURN_LABEL = st.sampled_from(["User", "Human", "Assistant", "AI", "Q", "A", "System", "Tool"])
TRANSCRIPT_LINE = st.one_of(
    st.builds(lambda label, text: f"{label}:{text}", TURN_LABEL, st.text(ANY_CHAR, max_size=20)),
    st.sampled_from(["", "---", "===", "  ", "User:", "Assistant:   "]),
    st.text(ANY_CHAR, max_size=20),
)


@FAST
@given(st.lists(TRANSCRIPT_LINE, min_size=1, max_size=14), LINE_ENDINGS, st.booleans())
def test_transcripts_with_any_speakers_separators_and_line_endings(lines, newline, bom):
    outcome(_encode(newline.join(lines), bom), ".txt", ReadOptions(format="text"))


@FAST
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=4),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.integers(min_value=-5, max_value=10**9),
)
def test_any_split_ratios_seed_and_token_limit_give_a_split_or_invalid_split(ratios, seed, limit):
    text = "\n".join(
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": f"Q{i}?"},
                    {"role": "assistant", "content": f"A{i}."},
                ]
            }
        )
        for i in range(12)
    )
    try:
        outcome(text.encode(), ".jsonl", None, ratios=ratios, seed=seed, max_tokens=limit)
    except InvalidSplit as error:
        assert str(error)


@pytest.mark.parametrize("depth", [100, 5_000, 200_000])
@pytest.mark.parametrize("container", ["jsonl", "array"])
def test_deeply_nested_json_is_a_named_error_not_a_recursion_crash(depth, container):
    nested = "[" * depth + "]" * depth
    record = '{"messages": ' + nested + "}"
    text = record if container == "jsonl" else "[" + record + "]"
    result = outcome(text.encode(), ".json", None)
    assert isinstance(result, MalformedRecord)
    if depth > 1000:
        assert result.message == TOO_DEEP


def test_one_record_over_the_size_limit_is_refused_by_name(tmp_path):
    big = "x" * (MAX_RECORD_BYTES + 10)
    path = tmp_path / "big.jsonl"
    path.write_text('{"instruction": "Hi?", "output": "' + big + '"}\n')
    with pytest.raises(MalformedRecord) as caught:
        prepare_dataset(path)
    assert caught.value.message == RECORD_TOO_LARGE.format(limit_mb=MAX_RECORD_BYTES >> 20)
    assert caught.value.line == 1


@pytest.mark.parametrize(
    "data",
    [
        "Question?".encode("utf-16"),  # BOM and NUL bytes
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
        b"\xff\xfe\xfd" * 2000,
    ],
    ids=["utf-16", "png", "undecodable"],
)
def test_binary_and_other_encodings_are_not_text(tmp_path, data):
    path = tmp_path / "data.jsonl"
    path.write_bytes(data)
    with pytest.raises(NotText):
        prepare_dataset(path)


@FAST
@given(
    st.sampled_from(sorted(RECORDS)).flatmap(
        lambda fmt: st.lists(RECORDS[fmt], min_size=1, max_size=4)
    ),
    st.integers(min_value=0, max_value=100),
)
def test_parquet_of_almost_right_records_whole_or_cut(records, cut_percent):
    """Each record as a row of a Parquet file (ASCII JSON text where pyarrow cannot store a
    column), whole or cut short: a report or a named error."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = sorted({key for record in records for key in record})
    columns = {}
    for key in fields:
        values = [record.get(key) for record in records]
        try:
            columns[key] = pa.array(values)
        except (pa.ArrowException, ValueError, OverflowError):
            columns[key] = pa.array([json.dumps(v) for v in values])
    buffer = pa.BufferOutputStream()
    try:
        pq.write_table(pa.table(columns), buffer)
    except pa.ArrowException:  # types Parquet cannot hold (structs without fields)
        text = {k: pa.array([json.dumps(r.get(k)) for r in records]) for k in fields}
        buffer = pa.BufferOutputStream()
        pq.write_table(pa.table(text), buffer)
    data = buffer.getvalue().to_pybytes()
    outcome(data[: max(4, len(data) * cut_percent // 100)], ".parquet", None)
