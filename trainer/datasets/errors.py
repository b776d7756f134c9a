"""Named errors for input that cannot be read as a dataset at all.

Lint issues are findings about a dataset that was read; these errors mean there is nothing to
lint. Each carries the file, the 1-based line (when one applies) and a message built from one of
the constants below, which tests assert on.
"""

EMPTY_FILE = "the file is empty: no examples found"
NOT_TEXT = (
    "neither a text file nor a Parquet file: binary data (NUL bytes or mostly undecodable "
    "bytes) near byte {offset}"
)
RECORD_TOO_LARGE = "a single record is larger than {limit_mb} MB; split the file or shorten it"
BROKEN_JSON = "broken JSON: {detail}"
TRUNCATED_JSON = "the record is cut off at column {column}, before it is complete ({detail})"
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
    "fields {fields} match no known layout (expected 'messages', 'conversations', 'text', "
    "'chosen' and 'rejected', 'instruction' and 'output' or 'response', 'prompt' and "
    "'response'); name yours with --prompt-field and --response-field, or --messages-field "
    "for a list of turns"
)
TEXT_NO_SPEAKERS = (
    "field {field!r} has no speaker markers such as '### Human:', '\\n\\nHuman:' or 'User:'"
)
PAIR_ONLY_ANSWER = (
    "field {field!r} holds an answer without speaker markers and there is no {prompt!r} field "
    "to ask the question"
)
PAIR_NO_ANSWER = "field {field!r} does not end with an assistant answer"
PAIR_PROMPTS_DIFFER = (
    "the rejected conversation does not ask what the chosen one asks: only the final answers "
    "of a pair may differ"
)
MISSING_TABLE_COLUMN = "missing column {column!r}; the file has columns {columns}"
PARQUET_BROKEN = "cannot read the Parquet file (truncated or damaged?): {detail}"
ARROW_BROKEN = (
    "cannot read the saved dataset's Arrow file {name!r} (truncated or damaged?): {detail}"
)
NOT_SAVED_DATASET = (
    "a folder must be written by datasets' save_to_disk: it has neither state.json nor "
    "dataset_dict.json"
)
SAVED_DATASET_BROKEN = "the saved dataset's {name} cannot be read: {detail}"
SPLIT_FOLDER_UNKNOWN = (
    "split {split!r} of the saved dataset is not train, validation, feedback or test; import its "
    "folder {folder!r} on its own"
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
SPLIT_FIELD_VALUE = (
    "unknown split {value!r}; expected train, validation (val, valid, dev), feedback or test"
)
TOO_DEEP = "JSON nested too deeply to be an example"


class DatasetError(Exception):
    """The input cannot be used as a dataset. ``file`` and ``line`` (text files) or ``row``
    (Parquet files and saved datasets) say where; both are 1-based."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        row: int | None = None,
    ):
        self.message = message
        self.file = file
        self.line = line
        self.row = row
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = [
            self.file,
            f"line {self.line}" if self.line else None,
            f"row {self.row}" if self.row else None,
        ]
        return ": ".join([*(part for part in where if part), self.message])


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
