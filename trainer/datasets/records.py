"""Turn one JSON record (Alpaca, ShareGPT or OpenAI messages) into canonical chat messages.

The speaker labels are kept as written ("human", "gpt", "User") beside the canonical roles, so
the linter can see a file that mixes them.
"""

from dataclasses import dataclass
from typing import Any

from trainer.datasets.errors import (
    FIELD_NOT_LIST,
    FIELD_NOT_TEXT,
    JSON_NOT_OBJECT,
    MISSING_FIELD,
    SPLIT_FIELD_VALUE,
    TURN_NOT_OBJECT,
    UNKNOWN_FIELDS,
    UNKNOWN_ROLE,
    MalformedRecord,
    MissingField,
    UnknownFormat,
)
from trainer.datasets.normalise import Messages, message

ALPACA, SHAREGPT, MESSAGES, CSV, TEXT = "alpaca", "sharegpt", "messages", "csv", "text"
JSON_FORMATS = (ALPACA, SHAREGPT, MESSAGES)
FORMATS = (*JSON_FORMATS, CSV, TEXT)

# Speaker labels seen in the wild, lower-cased, and the canonical role each one means.
ROLE_ALIASES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "customer": "user",
    "question": "user",
    "q": "user",
    "prompter": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "bot": "assistant",
    "ai": "assistant",
    "model": "assistant",
    "agent": "assistant",
    "answer": "assistant",
    "a": "assistant",
}
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "val": "validation",
    "valid": "validation",
    "dev": "validation",
    "test": "test",
}


@dataclass(frozen=True)
class Record:
    messages: Messages
    labels: tuple[str, ...]  # speaker labels as written, one per message; empty when implicit
    split: str | None  # the split the file assigns, if any


def kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def detect_json_format(record: dict, *, file: str, line: int) -> str:
    if "messages" in record:
        return MESSAGES
    if "conversations" in record:
        return SHAREGPT
    if "instruction" in record:
        return ALPACA
    fields = ", ".join(repr(k) for k in list(record)[:8]) or "none"
    raise UnknownFormat(UNKNOWN_FIELDS.format(fields=fields), file=file, line=line)


def parse_split(value: Any, *, file: str, line: int) -> str | None:
    if value is None:
        return None
    split = SPLIT_ALIASES.get(str(value).strip().lower()) if isinstance(value, str) else None
    if split is None:
        raise MalformedRecord(SPLIT_FIELD_VALUE.format(value=value), file=file, line=line)
    return split


def parse_record(record: Any, fmt: str, *, file: str, line: int) -> Record:
    if not isinstance(record, dict):
        raise MalformedRecord(JSON_NOT_OBJECT.format(kind=kind(record)), file=file, line=line)
    parser = {ALPACA: _alpaca, SHAREGPT: _sharegpt, MESSAGES: _messages}[fmt]
    messages, labels = parser(record, file=file, line=line)
    return Record(messages, labels, parse_split(record.get("split"), file=file, line=line))


def _text(record: dict, field: str, fmt: str, *, file: str, line: int, required: bool) -> str:
    if field not in record or (record[field] is None and not required):
        if required:
            raise MissingField(MISSING_FIELD.format(field=field, format=fmt), file=file, line=line)
        return ""
    value = record[field]
    if not isinstance(value, str):
        raise MalformedRecord(
            FIELD_NOT_TEXT.format(field=field, kind=kind(value)), file=file, line=line
        )
    return value


def _alpaca(record: dict, *, file: str, line: int) -> tuple[Messages, tuple[str, ...]]:
    instruction = _text(record, "instruction", ALPACA, file=file, line=line, required=True)
    extra = _text(record, "input", ALPACA, file=file, line=line, required=False)
    output = _text(record, "output", ALPACA, file=file, line=line, required=True)
    system = _text(record, "system", ALPACA, file=file, line=line, required=False)
    prompt = "\n\n".join(part for part in (instruction, extra) if part.strip()) or instruction
    messages = [message("system", system)] if system.strip() else []
    messages += [message("user", prompt), message("assistant", output)]
    return messages, ()


def _turns(record: dict, field: str, fmt: str, *, file: str, line: int) -> list[dict]:
    if field not in record:
        raise MissingField(MISSING_FIELD.format(field=field, format=fmt), file=file, line=line)
    turns = record[field]
    if not isinstance(turns, list):
        raise MalformedRecord(
            FIELD_NOT_LIST.format(field=field, kind=kind(turns)), file=file, line=line
        )
    for number, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict):
            detail = TURN_NOT_OBJECT.format(turn=number, field=field, kind=kind(turn))
            raise MalformedRecord(detail, file=file, line=line)
    return turns


def _role(label: Any, turn: int, *, file: str, line: int) -> str:
    role = ROLE_ALIASES.get(label.strip().lower()) if isinstance(label, str) else None
    if role is None:
        known = ", ".join(sorted(set(ROLE_ALIASES)))
        raise MalformedRecord(
            UNKNOWN_ROLE.format(role=label, turn=turn, known=known), file=file, line=line
        )
    return role


def _sharegpt(record: dict, *, file: str, line: int) -> tuple[Messages, tuple[str, ...]]:
    turns = _turns(record, "conversations", SHAREGPT, file=file, line=line)
    messages: Messages = []
    labels: list[str] = []
    system = _text(record, "system", SHAREGPT, file=file, line=line, required=False)
    if system.strip():
        messages.append(message("system", system))
        labels.append("system")
    for number, turn in enumerate(turns, start=1):
        label = _text(turn, "from", SHAREGPT, file=file, line=line, required=True)
        content = _text(turn, "value", SHAREGPT, file=file, line=line, required=True)
        messages.append(message(_role(label, number, file=file, line=line), content))
        labels.append(label)
    return messages, tuple(labels)


def _content(turn: dict, *, file: str, line: int) -> str:
    """OpenAI content: a string, or a list of parts of which only text parts are allowed."""
    value = turn.get("content")
    if isinstance(value, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        for p in value
    ):
        return "\n".join(part["text"] for part in value)
    return _text(turn, "content", MESSAGES, file=file, line=line, required=True)


def _messages(record: dict, *, file: str, line: int) -> tuple[Messages, tuple[str, ...]]:
    turns = _turns(record, "messages", MESSAGES, file=file, line=line)
    messages: Messages = []
    labels: list[str] = []
    for number, turn in enumerate(turns, start=1):
        label = _text(turn, "role", MESSAGES, file=file, line=line, required=True)
        content = _content(turn, file=file, line=line)
        messages.append(message(_role(label, number, file=file, line=line), content))
        labels.append(label)
    return messages, tuple(labels)
