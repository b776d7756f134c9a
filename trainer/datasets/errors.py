"""Named errors for input that cannot be read as a dataset at all.

Lint issues are findings about a dataset that was read; these errors mean there is nothing to
lint. Each carries the file, the 1-based line (when one applies) and a message built from one of
the constants below, which tests assert on.
"""

EMPTY_FILE = "the file is empty: no examples found"
NOT_TEXT = "not a text file: binary data (NUL bytes or mostly undecodable bytes) near byte {offset}"
RECORD_TOO_LARGE = "a single record is larger than {limit_mb} MB; split the file or shorten it"
BROKEN_JSON = "broken JSON: {detail}"
JSON_NOT_OBJECT = "expected a JSON object for each example, found {kind}"
JSONL_HINT = " (JSON Lines needs one complete object per line)"
ARRAY_SEPARATOR = "expected ',' or ']' between examples of the JSON array, found {found!r}"
ARRAY_UNCLOSED = "the JSON array is not closed with ']'"
ARRAY_TRAILING = "unexpected content after the end of the JSON array: {found!r}"
MISSING_FIELD = "missing field {field!r} for the {format} format"
FIELD_NOT_TEXT = "field {field!r} must be a string, found {kind}"
FIELD_NOT_LIST = "field {field!r} must be a list of turns, found {kind}"
TURN_NOT_OBJECT = "turn {turn} of {field!r} must be an object, found {kind}"
UNKNOWN_ROLE = "unknown role {role!r} in turn {turn}; expected one of {known}"
UNKNOWN_FORMAT = "cannot tell the dataset format: {detail}"
UNKNOWN_FORMAT_NAME = "unknown format {name!r}; expected one of {known}"
UNKNOWN_FIELDS = (
    "fields {fields} match no known format (expected 'messages', 'conversations', "
    "or 'instruction' and 'output')"
)
MISSING_COLUMN = "missing column {column!r}; the header has {columns}"
CSV_SHORT_ROW = "row has {found} fields but the header has {expected}"
CSV_BROKEN = "broken CSV: {detail}"
TRANSCRIPT_NO_SPEAKER = (
    "a transcript example must start with a speaker prefix such as 'User:' or 'Assistant:', "
    "found {found!r}"
)
SPLIT_FIELD_MIXED = (
    "some records carry a 'split' field and others do not; give every record one or none"
)
SPLIT_FIELD_VALUE = "unknown split {value!r}; expected train, validation (val, valid, dev) or test"
TOO_DEEP = "JSON nested too deeply to be an example"


class DatasetError(Exception):
    """The input cannot be used as a dataset. ``file`` and ``line`` say where (line is 1-based)."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None):
        self.message = message
        self.file = file
        self.line = line
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = [part for part in (self.file, f"line {self.line}" if self.line else None) if part]
        return ": ".join([*where, self.message])


class EmptyDataset(DatasetError):
    """The file holds no examples."""


class NotText(DatasetError):
    """The file is binary, not text."""


class MalformedRecord(DatasetError):
    """A record cannot be parsed (broken JSON or CSV, wrong types, a record too large)."""


class MissingField(DatasetError):
    """A record lacks a field its format requires."""


class UnknownFormat(DatasetError):
    """The format could not be detected, or the name given is not a known format."""


class InvalidSplit(ValueError):
    """Split ratios that are not three non-negative shares summing to 1."""
