"""Readers for every supported format, ``--format auto`` detection, and the example stream.

``DatasetReader(path, options)`` yields ``SourceExample`` objects one at a time: canonical chat
messages plus where they came from (1-based lines, or rows of a Parquet file or saved dataset)
and how the speakers were labelled.

A file is a container (JSON Lines, a JSON array, CSV, a transcript, Parquet, a folder written by
``save_to_disk``); JSON objects and table rows have a record layout (``records.LAYOUTS``).
``--format`` names either; what it does not name is detected.
"""

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.datasets.errors import (
    CSV_BROKEN,
    CSV_SHORT_ROW,
    EMPTY_FILE,
    JSON_NOT_OBJECT,
    MISSING_COLUMN,
    RECORD_TOO_LARGE,
    SPLIT_FIELD_MIXED,
    TRANSCRIPT_NO_SPEAKER,
    UNKNOWN_FORMAT,
    UNKNOWN_FORMAT_NAME,
    DatasetError,
    EmptyDataset,
    MalformedRecord,
    MissingField,
    UnknownFormat,
)
from trainer.datasets.json_stream import array_objects, jsonl_objects, loads_line
from trainer.datasets.normalise import Messages, message
from trainer.datasets.options import AUTO, PROMPT, RESPONSE, SPLIT_FIELD, SYSTEM, ReadOptions
from trainer.datasets.records import (
    ARROW,
    CSV,
    FORMATS,
    LAYOUTS,
    PARQUET,
    TEXT,
    Layout,
    Record,
    detect_layout,
    kind,
    layout_for,
    parse_record,
    parse_split,
)
from trainer.datasets.source import MAX_RECORD_BYTES, TextSource
from trainer.datasets.tables import Row, is_parquet, parquet_rows, saved_dataset_rows
from trainer.datasets.transcript import ROLE_ALIASES

JSONL, ARRAY = "jsonl", "array"
SPEAKER = re.compile(r"^([A-Za-z]+)[ \t]*:(.*)$")
SEPARATOR_LINES = frozenset({"---", "==="})
NOT_DETECTED = (
    "the first line is neither JSON, a CSV header with {prompt!r} and {response!r} columns, "
    "nor a transcript turn such as 'User: …'"
)


@dataclass
class SourceExample:
    index: int  # 0-based position among the examples
    line: int  # 1-based line (or row) where the example starts
    messages: Messages
    labels: tuple[str, ...]  # speaker labels as written; empty when the format has none
    turn_lines: tuple[int, ...]  # 1-based line of each message
    file_split: str | None  # split assigned by the file itself, if any
    rejected: str | None = None  # the rejected answer of a preference pair


Numbered = tuple[int, tuple[int, ...], Record]


def speaker_of(text: str) -> tuple[str, str] | None:
    """``("User", "rest of line")`` when the line opens a transcript turn."""
    match = SPEAKER.match(text)
    if match and match.group(1).lower() in ROLE_ALIASES:
        return match.group(1), match.group(2)
    return None


def _as_row(error: DatasetError) -> DatasetError:
    """Records of tables are parsed like JSON lines; their errors name the row."""
    if error.row is None:
        error.row, error.line = error.line, None
    return error


class DatasetReader:
    def __init__(self, path: str | Path, options: ReadOptions | None = None):
        self.options = options or ReadOptions()
        if self.options.format != AUTO and self.options.format not in FORMATS:
            known = ", ".join((AUTO, *FORMATS))
            raise UnknownFormat(UNKNOWN_FORMAT_NAME.format(name=self.options.format, known=known))
        self.path = Path(path)
        self.source = TextSource(self.path)
        self.format: str | None = None
        self.container: str | None = None
        self.layout: Layout | None = None
        if self.options.format in LAYOUTS:
            self.layout = layout_for(self.options.format, self.options)

    @property
    def invalid_utf8_lines(self) -> list[int]:
        return self.source.invalid_utf8_lines

    def detect(self) -> str:
        """Decide the container and the layout: from the path for tables, else from the first
        non-blank line; a table's or JSON file's layout from its first record."""
        if self.format:
            return self.format
        wanted = self.options.format
        if wanted == ARROW or self.path.is_dir():
            self.container = ARROW
        elif wanted == PARQUET or (wanted not in (CSV, TEXT) and is_parquet(self.path)):
            self.container = PARQUET
        else:
            self.container = self._detect_text(wanted)
        if self.container in (ARROW, PARQUET):
            rows = self._rows()
            first = next(rows, None)
            rows.close()
            if first is None:
                raise EmptyDataset(EMPTY_FILE, file=self.source.name)
            if self.layout is None:
                self.layout = self._detect_record(first[1], first[0])
            self.format = f"{self.container}/{self.layout.name}"
        else:
            self.format = self.layout.name if self.layout else self.container
        return self.format

    def _detect_text(self, wanted: str) -> str:
        self.source.check_is_text()
        first_line, first = self._first_line()
        if wanted in (CSV, TEXT):
            return wanted
        container = ARRAY if first.lstrip().startswith("[") else JSONL
        if self.layout is not None:
            return container
        if container == ARRAY:
            self.layout = self._detect_array()
        elif first.lstrip().startswith("{"):
            record = loads_line(first, file=self.source.name, line=first_line)
            self.layout = self._detect_record(record, first_line)
        elif speaker_of(first):
            return TEXT
        elif self._looks_like_csv(first):
            return CSV
        else:
            detail = NOT_DETECTED.format(
                prompt=self.options.prompt_field or PROMPT,
                response=self.options.response_field or RESPONSE,
            )
            raise UnknownFormat(
                UNKNOWN_FORMAT.format(detail=detail), file=self.source.name, line=first_line
            )
        return container

    def _first_line(self) -> tuple[int, str]:
        """The first non-blank line; only its first piece when it opens a JSON array, which may
        be a whole minified file on one line."""
        parts: list[str] = []
        size = 0
        for piece in self.source.pieces():
            if not parts and not piece.text.strip():
                continue
            parts.append(piece.text)
            size += len(piece.text)
            if size > MAX_RECORD_BYTES:
                limit = RECORD_TOO_LARGE.format(limit_mb=MAX_RECORD_BYTES >> 20)
                raise MalformedRecord(limit, file=self.source.name, line=piece.line)
            if piece.complete or parts[0].lstrip().startswith("["):
                return piece.line, "".join(parts)
        raise EmptyDataset(EMPTY_FILE, file=self.source.name)

    def _detect_array(self) -> Layout:
        for line, record in array_objects(self.source):
            return self._detect_record(record, line)
        raise EmptyDataset(EMPTY_FILE, file=self.source.name)

    def _detect_record(self, record: Any, line: int) -> Layout:
        try:
            if not isinstance(record, dict):
                detail = JSON_NOT_OBJECT.format(kind=kind(record))
                raise MalformedRecord(detail, file=self.source.name, line=line)
            return detect_layout(record, self.options, file=self.source.name, line=line)
        except DatasetError as error:
            raise _as_row(error) if self.container in (ARROW, PARQUET) else error from None

    def _looks_like_csv(self, header: str) -> bool:
        if self.path.suffix.lower() in (".csv", ".tsv"):
            return True
        cells = {c.strip().lower() for c in re.split(r"[,\t;]", header)}
        prompt = self.options.prompt_field or PROMPT
        response = self.options.response_field or RESPONSE
        return {prompt.lower(), response.lower()} <= cells

    def __iter__(self) -> Iterator[SourceExample]:
        self.detect()
        records = {CSV: self._csv, TEXT: self._transcripts, ARROW: self._table}
        records |= {PARQUET: self._table}
        has_split: bool | None = None
        count = 0
        for index, (line, turn_lines, record) in enumerate(
            records.get(self.container, self._json)()
        ):
            if has_split is None:
                has_split = record.split is not None
            elif has_split != (record.split is not None):
                raise MalformedRecord(SPLIT_FIELD_MIXED, file=self.source.name, line=line)
            count += 1
            yield SourceExample(
                index=index,
                line=line,
                messages=record.messages,
                labels=record.labels,
                turn_lines=turn_lines or (line,) * len(record.messages),
                file_split=record.split,
                rejected=record.rejected,
            )
        if not count:
            raise EmptyDataset(EMPTY_FILE, file=self.source.name)

    def _json(self) -> Iterator[Numbered]:
        objects = array_objects if self.container == ARRAY else jsonl_objects
        for line, value in objects(self.source):
            yield line, (), parse_record(value, self.layout, file=self.source.name, line=line)

    def _rows(self) -> Iterator[Row]:
        named = self.options.named_fields
        if self.container == ARROW:
            return saved_dataset_rows(self.path, named=named)
        return parquet_rows(self.path, named=named)

    def _table(self) -> Iterator[Numbered]:
        for row, value, split in self._rows():
            try:
                record = parse_record(value, self.layout, file=self.source.name, line=row)
            except DatasetError as error:
                raise _as_row(error) from None
            if split is not None:
                record = Record(record.messages, record.labels, split, record.rejected)
            yield row, (), record

    def _csv(self) -> Iterator[Numbered]:
        name = self.source.name
        numbered = self.source.lines()
        first_line, first = next(((n, t) for n, t in numbered if t.strip()), (0, ""))
        if not first:
            raise EmptyDataset(EMPTY_FILE, file=name)
        delimiter = "\t" if self.path.suffix.lower() == ".tsv" else _delimiter(first)
        reader = csv.reader(_chain(first, (text for _, text in numbered)), delimiter=delimiter)
        # reader.line_num counts from the header; blank lines before it were skipped above.
        offset = first_line - 1
        try:
            header = [cell.strip().lower() for cell in next(reader)]
            columns = self._columns(header, line=first_line)
            previous = reader.line_num
            for row in reader:
                line = offset + previous + 1
                previous = reader.line_num
                if not row:
                    continue
                yield line, (), self._csv_record(row, columns, len(header), line=line)
        except csv.Error as error:
            detail = CSV_BROKEN.format(detail=error)
            raise MalformedRecord(detail, file=name, line=offset + reader.line_num) from None

    def _columns(self, header: list[str], *, line: int) -> dict[str, int | None]:
        options = self.options
        wanted = {
            "prompt": options.prompt_field or PROMPT,
            "response": options.response_field or RESPONSE,
            "system": options.system_field or SYSTEM,
            "split": SPLIT_FIELD,
        }
        columns = {key: _index(header, name) for key, name in wanted.items()}
        for key in ("prompt", "response"):
            if columns[key] is None:
                detail = MISSING_COLUMN.format(column=wanted[key], columns=header)
                raise MissingField(detail, file=self.source.name, line=line)
        return columns

    def _csv_record(self, row: list[str], columns: dict, width: int, *, line: int) -> Record:
        needed = max(i for i in columns.values() if i is not None) + 1
        if len(row) < needed:
            detail = CSV_SHORT_ROW.format(found=len(row), expected=width)
            raise MalformedRecord(detail, file=self.source.name, line=line)

        def cell(key: str) -> str:
            return row[columns[key]] if columns[key] is not None else ""

        messages = [message("system", cell("system"))] if cell("system").strip() else []
        messages += [message("user", cell("prompt")), message("assistant", cell("response"))]
        split_cell = cell("split").strip() or None
        split = parse_split(split_cell, file=self.source.name, line=line)
        return Record(messages, (), split)

    def _transcripts(self) -> Iterator[Numbered]:
        separated = any(text.strip() in SEPARATOR_LINES for _, text in self.source.lines())
        turns: list[tuple[str, int, list[str]]] = []
        for line, raw in self.source.lines():
            text = raw.rstrip("\r\n")
            ends_example = text.strip() in SEPARATOR_LINES if separated else not text.strip()
            if ends_example:
                if turns:
                    yield _transcript(turns)
                turns = []
                continue
            opened = speaker_of(text)
            if opened:
                turns.append((opened[0], line, [opened[1]]))
            elif turns:
                turns[-1][2].append(text)
            elif text.strip():
                detail = TRANSCRIPT_NO_SPEAKER.format(found=text.strip()[:40])
                raise MalformedRecord(detail, file=self.source.name, line=line)
        if turns:
            yield _transcript(turns)


def _transcript(turns: list[tuple[str, int, list[str]]]) -> Numbered:
    messages = [
        message(ROLE_ALIASES[label.lower()], "\n".join(parts).strip()) for label, _, parts in turns
    ]
    labels = tuple(label for label, _, _ in turns)
    lines = tuple(line for _, line, _ in turns)
    return lines[0], lines, Record(messages, labels, None)


def _delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _index(header: list[str], name: str) -> int | None:
    name = name.strip().lower()
    return header.index(name) if name in header else None


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest
