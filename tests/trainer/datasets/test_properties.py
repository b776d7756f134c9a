"""Whatever bytes arrive, reading and linting end in a named error or a report, never a crash."""

import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainer.datasets import FORMATS, DatasetError, PreparedDataset, ReadOptions, prepare_dataset

FORMAT_CHOICES = st.sampled_from(["auto", *FORMATS])
SUFFIXES = st.sampled_from([".jsonl", ".json", ".csv", ".tsv", ".txt"])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "messages",
                    "role",
                    "content",
                    "conversations",
                    "from",
                    "value",
                    "instruction",
                    "input",
                    "output",
                    "system",
                    "split",
                    "type",
                    "text",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=12,
)
TRANSCRIPT_LINES = st.lists(
    st.one_of(
        st.builds(
            lambda p, t: f"{p}:{t}",
            st.sampled_from(["User", "Human", "AI", "Bot", "Q", "x"]),
            st.text(),
        ),
        st.sampled_from(["", "---", "   "]),
        st.text(),
    ),
    max_size=12,
)


def outcome(data: bytes, suffix: str, fmt: str) -> PreparedDataset | DatasetError:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(data)
        try:
            return prepare_dataset(path, options=None if fmt == "auto" else _options(fmt))
        except DatasetError as error:
            assert error.file == str(path)
            assert error.line is None or error.line >= 1
            return error


def _options(fmt):
    return ReadOptions(format=fmt)


def check(result):
    assert isinstance(result, PreparedDataset | DatasetError)
    if isinstance(result, PreparedDataset):
        assert result.examples
        assert all(line >= 1 for issue in result.issues for line in issue.lines)
        assert sum(result.counts.values()) == len(result.examples)


# A few seconds by default; EVALHUB_HYPOTHESIS_EXAMPLES=2000 for a long hunt.
FAST = settings(
    max_examples=int(os.environ.get("EVALHUB_HYPOTHESIS_EXAMPLES", "80")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FAST
@given(st.binary(max_size=600), SUFFIXES, FORMAT_CHOICES)
def test_random_bytes(data, suffix, fmt):
    check(outcome(data, suffix, fmt))


@FAST
@given(st.lists(JSON_VALUES, min_size=1, max_size=6), st.booleans(), FORMAT_CHOICES)
def test_random_json_records(values, as_array, fmt):
    if as_array:
        data = json.dumps(values, indent=1).encode()
    else:
        data = "\n".join(json.dumps(v) for v in values).encode()
    check(outcome(data, ".json", fmt))


@FAST
@given(TRANSCRIPT_LINES, FORMAT_CHOICES)
def test_random_transcripts_and_csv(lines, fmt):
    check(outcome("\n".join(lines).encode("utf-8", "surrogatepass"), ".txt", fmt))


@FAST
@given(st.lists(st.lists(st.text(max_size=20), max_size=4), max_size=6))
def test_random_csv_rows(rows):
    body = "\n".join(",".join(json.dumps(c) if i % 2 else c for i, c in enumerate(r)) for r in rows)
    data = ("prompt,response\n" + body).encode("utf-8", "surrogatepass")
    check(outcome(data, ".csv", "auto"))
