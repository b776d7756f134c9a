"""Turn one record (a JSON object, a Parquet or Arrow row) into canonical chat messages.

Layouts: Alpaca, Dolly, ShareGPT, OpenAI messages, a ``text`` transcript with speaker markers,
``chosen``/``rejected`` preference pairs, and prompt/response fields the user names. The speaker
labels are kept as written ("human", "gpt", "### Human") beside the canonical roles, so the
linter can see a file that mixes them.
"""

from dataclasses import dataclass, replace
from typing import Any

from trainer.datasets.errors import (
    FIELD_NOT_LIST,
    FIELD_NOT_TEXT,
    JSON_NOT_OBJECT,
    MISSING_FIELD,
    PAIR_NO_ANSWER,
    PAIR_ONLY_ANSWER,
    PAIR_PROMPTS_DIFFER,
    SPLIT_FIELD_VALUE,
    TEXT_NO_SPEAKERS,
    TURN_NOT_OBJECT,
    UNKNOWN_FIELDS,
    UNKNOWN_ROLE,
    MalformedRecord,
    MissingField,
    UnknownFormat,
)
from trainer.datasets.normalise import Messages, message
from trainer.datasets.options import (
    MESSAGES_FIELD,
    PROMPT,
    RESPONSE,
    SPLIT_FIELD,
    SYSTEM,
    ReadOptions,
)
from trainer.datasets.transcript import ROLE_ALIASES, split_transcript

ALPACA, SHAREGPT, MESSAGES, DOLLY, PAIRS, TRANSCRIPT, FIELDS = (
    "alpaca",
    "sharegpt",
    "messages",
    "dolly",
    "pairs",
    "transcript",
    "fields",
)
CSV, TEXT, PARQUET, ARROW = "csv", "text", "parquet", "arrow"
# Layouts of one record (a JSON object, a Parquet or Arrow row) ...
LAYOUTS = (ALPACA, SHAREGPT, MESSAGES, DOLLY, PAIRS, TRANSCRIPT, FIELDS)
# ... and containers: CSV and transcript files have their own layout, tables hold records.
CONTAINERS = (CSV, TEXT, PARQUET, ARROW)
FORMATS = (*LAYOUTS, *CONTAINERS)
TEXT_FIELD, CHOSEN, REJECTED, CONVERSATIONS = "text", "chosen", "rejected", "conversations"
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "val": "validation",
    "valid": "validation",
    "dev": "validation",
    "feedback": "feedback",
    "test": "test",
}
Parsed = tuple[Messages, tuple[str, ...]]


@dataclass(frozen=True)
class Record:
    messages: Messages
    labels: tuple[str, ...]  # speaker labels as written, one per message; empty when implicit
    split: str | None  # the split the file assigns, if any
    rejected: str | None = None  # the rejected answer of a preference pair


@dataclass(frozen=True)
class Layout:
    """A record layout and the fields it reads."""

    name: str
    prompt: str = PROMPT
    response: str = RESPONSE
    system: str = SYSTEM
    messages: str = MESSAGES_FIELD


def kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def layout_for(name: str, options: ReadOptions) -> Layout:
    """The layout ``name``, reading the fields the user named or its own."""
    own_turns = CONVERSATIONS if name == SHAREGPT else MESSAGES_FIELD
    return Layout(
        name,
        prompt=options.prompt_field or PROMPT,
        response=options.response_field or RESPONSE,
        system=options.system_field or SYSTEM,
        messages=options.messages_field or own_turns,
    )


def detect_layout(record: dict, options: ReadOptions, *, file: str, line: int) -> Layout:
    """The layout of a (first) record; fields the user named win over detection."""
    if options.messages_field:
        return layout_for(MESSAGES, options)
    if options.maps_fields:
        return layout_for(FIELDS, options)
    if MESSAGES_FIELD in record:
        return layout_for(MESSAGES, options)
    if CONVERSATIONS in record:
        return layout_for(SHAREGPT, options)
    if CHOSEN in record or REJECTED in record:
        return layout_for(PAIRS, options)
    if "instruction" in record:
        dolly = RESPONSE in record and "output" not in record
        return layout_for(DOLLY if dolly else ALPACA, options)
    if TEXT_FIELD in record:
        return layout_for(TRANSCRIPT, options)
    if PROMPT in record and (RESPONSE in record or "completion" in record):
        response = RESPONSE if RESPONSE in record else "completion"
        return replace(layout_for(FIELDS, options), response=response)
    fields = ", ".join(repr(k) for k in list(record)[:8]) or "none"
    raise UnknownFormat(UNKNOWN_FIELDS.format(fields=fields), file=file, line=line)


def parse_split(value: Any, *, file: str, line: int) -> str | None:
    if value is None:
        return None
    split = SPLIT_ALIASES.get(str(value).strip().lower()) if isinstance(value, str) else None
    if split is None:
        raise MalformedRecord(SPLIT_FIELD_VALUE.format(value=value), file=file, line=line)
    return split


def parse_record(record: Any, layout: Layout, *, file: str, line: int) -> Record:
    if not isinstance(record, dict):
        raise MalformedRecord(JSON_NOT_OBJECT.format(kind=kind(record)), file=file, line=line)
    split = parse_split(record.get(SPLIT_FIELD), file=file, line=line)
    if layout.name == PAIRS:
        messages, labels, rejected = _pair(record, layout, file=file, line=line)
        return Record(messages, labels, split, rejected)
    parser = {
        ALPACA: _alpaca,
        DOLLY: _dolly,
        SHAREGPT: _sharegpt,
        MESSAGES: _messages,
        TRANSCRIPT: _transcript,
        FIELDS: _fields,
    }[layout.name]
    messages, labels = parser(record, layout, file=file, line=line)
    return Record(messages, labels, split)


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


def _exchange(system: str, prompt: str, answer: str) -> Messages:
    messages = [message("system", system)] if system.strip() else []
    return [*messages, message("user", prompt), message("assistant", answer)]


def _joined(*parts: str) -> str:
    return "\n\n".join(part for part in parts if part.strip()) or parts[0]


def _alpaca(record: dict, layout: Layout, *, file: str, line: int) -> Parsed:
    instruction = _text(record, "instruction", ALPACA, file=file, line=line, required=True)
    extra = _text(record, "input", ALPACA, file=file, line=line, required=False)
    output = _text(record, "output", ALPACA, file=file, line=line, required=True)
    system = _text(record, layout.system, ALPACA, file=file, line=line, required=False)
    return _exchange(system, _joined(instruction, extra), output), ()


def _dolly(record: dict, layout: Layout, *, file: str, line: int) -> Parsed:
    """databricks-dolly-15k: the context is what the instruction is about, so it stays with it."""
    instruction = _text(record, "instruction", DOLLY, file=file, line=line, required=True)
    context = _text(record, "context", DOLLY, file=file, line=line, required=False)
    response = _text(record, RESPONSE, DOLLY, file=file, line=line, required=True)
    system = _text(record, layout.system, DOLLY, file=file, line=line, required=False)
    return _exchange(system, _joined(instruction, context), response), ()


def _fields(record: dict, layout: Layout, *, file: str, line: int) -> Parsed:
    prompt = _text(record, layout.prompt, FIELDS, file=file, line=line, required=True)
    response = _text(record, layout.response, FIELDS, file=file, line=line, required=True)
    system = _text(record, layout.system, FIELDS, file=file, line=line, required=False)
    return _exchange(system, prompt, response), ()


def _transcript(record: dict, layout: Layout, *, file: str, line: int) -> Parsed:
    text = _text(record, TEXT_FIELD, TRANSCRIPT, file=file, line=line, required=True)
    turns = split_transcript(text)
    if turns is None:
        raise MalformedRecord(TEXT_NO_SPEAKERS.format(field=TEXT_FIELD), file=file, line=line)
    return turns


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


def _sharegpt(record: dict, layout: Layout, *, file: str, line: int) -> Parsed:
    turns = _turns(record, layout.messages, SHAREGPT, file=file, line=line)
    messages: Messages = []
    labels: list[str] = []
    system = _text(record, layout.system, SHAREGPT, file=file, line=line, required=False)
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


def _message_list(record: dict, field: str, fmt: str, *, file: str, line: int) -> Parsed:
    messages: Messages = []
    labels: list[str] = []
    for number, turn in enumerate(_turns(record, field, fmt, file=file, line=line), start=1):
        label = _text(turn, "role", fmt, file=file, line=line, required=True)
        content = _content(turn, file=file, line=line)
        messages.append(message(_role(label, number, file=file, line=line), content))
        labels.append(label)
    return messages, tuple(labels)


def _messages(record: dict, layout: Layout, *, file: str, line: int) -> Parsed:
    return _message_list(record, layout.messages, MESSAGES, file=file, line=line)


def _side(record: dict, field: str, layout: Layout, *, file: str, line: int) -> Parsed:
    """One side of a pair: a transcript with speaker markers, a list of turns, or a bare answer
    to the record's prompt field (the DPO layout: prompt, chosen, rejected)."""
    if record.get(field) is None:
        raise MissingField(MISSING_FIELD.format(field=field, format=PAIRS), file=file, line=line)
    if isinstance(record[field], list):
        messages, labels = _message_list(record, field, PAIRS, file=file, line=line)
    else:
        text = _text(record, field, PAIRS, file=file, line=line, required=True)
        messages, labels = split_transcript(text) or ([message("assistant", text)], ())
    if any(m["role"] == "user" for m in messages):
        return messages, labels
    if record.get(layout.prompt) is None:
        detail = PAIR_ONLY_ANSWER.format(field=field, prompt=layout.prompt)
        raise MalformedRecord(detail, file=file, line=line)
    if isinstance(record[layout.prompt], list):
        asked, asked_labels = _message_list(record, layout.prompt, PAIRS, file=file, line=line)
    else:
        text = _text(record, layout.prompt, PAIRS, file=file, line=line, required=True)
        asked, asked_labels = [message("user", text)], ()
    # Labels are all or nothing: the linter pairs them with the messages one to one.
    both = (*asked_labels, *labels) if asked_labels and labels else ()
    return [*asked, *messages], both


def _pair(record: dict, layout: Layout, *, file: str, line: int) -> tuple[Messages, Any, str]:
    """The chosen conversation is the example; the rejected one must ask the same, and only its
    final answer is kept."""
    chosen, labels = _side(record, CHOSEN, layout, file=file, line=line)
    rejected, _ = _side(record, REJECTED, layout, file=file, line=line)
    if rejected[-1]["role"] != "assistant":
        raise MalformedRecord(PAIR_NO_ANSWER.format(field=REJECTED), file=file, line=line)

    def asked(messages: Messages) -> list[tuple[str, str]]:
        return [(m["role"], m["content"].strip()) for m in messages[:-1]]

    if asked(chosen) != asked(rejected):
        raise MalformedRecord(PAIR_PROMPTS_DIFFER, file=file, line=line)
    return chosen, labels, rejected[-1]["content"]
