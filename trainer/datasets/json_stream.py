"""Stream JSON objects, with their 1-based start lines, out of JSON Lines files and JSON arrays.

A JSON array is parsed element by element with ``JSONDecoder.raw_decode`` over a buffer that
holds one unparsed element and a little more, so a minified array of any size is read in bounded
memory; a single element larger than ``MAX_RECORD_BYTES`` is refused with a clear message.
"""

import json
from collections.abc import Iterator
from typing import Any

from trainer.datasets.errors import (
    ARRAY_SEPARATOR,
    ARRAY_TRAILING,
    ARRAY_UNCLOSED,
    BROKEN_JSON,
    JSONL_HINT,
    RECORD_TOO_LARGE,
    TOO_DEEP,
    TRUNCATED_JSON,
    MalformedRecord,
)
from trainer.datasets.source import MAX_RECORD_BYTES, PIECE_BYTES, TextSource

_DECODER = json.JSONDecoder(strict=False)
_WHITESPACE = " \t\r\n"


def _detail(error: ValueError, column: int) -> str:
    if not isinstance(error, json.JSONDecodeError):
        return str(error)
    # "Unterminated string starting at" already ends with "at".
    joint = " " if error.msg.endswith(" at") else " at "
    return f"{error.msg}{joint}column {column}"


def _broken(error: ValueError, text: str, start: int, column_of: int) -> str:
    """The message for JSON that fails to parse in ``text`` from ``start``. The column is
    counted on the record's own line (``column_of`` is the column of ``text[0]``, 0-based), and
    a record that ends before it is complete is called cut off, at its last column."""
    at = error.pos if isinstance(error, json.JSONDecodeError) else start
    end = len(text.rstrip(_WHITESPACE))
    if isinstance(error, json.JSONDecodeError) and (
        at >= end or error.msg.startswith("Unterminated string")
    ):
        detail = _detail(error, _column(text, min(at, end), column_of))
        return BROKEN_JSON.format(
            detail=TRUNCATED_JSON.format(column=_column(text, end - 1, column_of), detail=detail)
        )
    return BROKEN_JSON.format(detail=_detail(error, _column(text, at, column_of)))


def _column(text: str, index: int, column_of: int) -> int:
    """1-based column of ``text[index]`` on its line."""
    newline = text.rfind("\n", 0, index)
    return index - newline if newline >= 0 else column_of + index + 1


def loads_line(text: str, *, file: str, line: int) -> Any:
    """Parse one JSON Lines record. Raw control characters inside strings are let through to
    the linter (which reports them) rather than refused as broken JSON."""
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise MalformedRecord(TOO_DEEP, file=file, line=line) from None
    except ValueError as error:
        hint = JSONL_HINT if text.strip() == "{" else ""
        detail = _broken(error, text, 0, 0) + hint
        raise MalformedRecord(detail, file=file, line=line) from None


def jsonl_objects(source: TextSource) -> Iterator[tuple[int, Any]]:
    for line, text in source.lines():
        if text.strip():
            yield line, loads_line(text, file=source.name, line=line)


class _ArrayBuffer:
    """The unparsed text of a JSON array, with line numbers kept up to date incrementally."""

    def __init__(self, source: TextSource):
        self.source = source
        self.pieces = source.pieces()
        self.text = ""
        self.pos = 0
        self.eof = False
        self._counted_to = 0  # newlines before this index are counted in _line
        self._line = 1
        self._column0 = 0  # 0-based column of text[0] on its line

    def line_at(self, index: int) -> int:
        return self._line + self.text.count("\n", self._counted_to, index)

    def advance(self, index: int) -> None:
        self._line = self.line_at(index)
        self._counted_to = self.pos = index

    def fill(self, at_least: int) -> bool:
        """Read at least ``at_least`` more characters (fewer at the end); False at the end."""
        new: list[str] = []
        size = 0
        for piece in self.pieces:
            new.append(piece.text)
            size += len(piece.text)
            if size >= at_least:
                break
        if not new:
            self.eof = True
            return False
        newline = self.text.rfind("\n", 0, self.pos)
        self._column0 = self.pos - newline - 1 if newline >= 0 else self._column0 + self.pos
        self.text = self.text[self.pos :] + "".join(new)
        self._counted_to -= self.pos
        self.pos = 0
        if len(self.text) > MAX_RECORD_BYTES + PIECE_BYTES:
            limit = RECORD_TOO_LARGE.format(limit_mb=MAX_RECORD_BYTES >> 20)
            raise MalformedRecord(limit, file=self.source.name, line=self._line)
        return True

    def peek(self) -> str | None:
        """The next non-whitespace character, reading on as needed; None at the end."""
        while True:
            index = self.pos
            while index < len(self.text) and self.text[index] in _WHITESPACE:
                index += 1
            self.advance(index)
            if index < len(self.text):
                return self.text[index]
            if not self.fill(1):
                return None

    def decode(self) -> tuple[int, Any]:
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except RecursionError:
                raise MalformedRecord(TOO_DEEP, file=self.source.name, line=self._line) from None
            except ValueError as error:
                # Read on, doubling the unparsed part each time: a large element costs a few
                # retries, and the buffer stays about one element long.
                unparsed = len(self.text) - self.pos
                if not self._incomplete(error) or not self.fill(max(unparsed, PIECE_BYTES)):
                    at = error.pos if isinstance(error, json.JSONDecodeError) else self.pos
                    detail = _broken(error, self.text, self.pos, self._column0)
                    line = self.line_at(max(at, self.pos))
                    raise MalformedRecord(detail, file=self.source.name, line=line) from None
                continue
            line = self._line
            self.advance(end)
            return line, value

    def _incomplete(self, error: ValueError) -> bool:
        """Whether more text could mend the error: a string or value cut at the buffer's end."""
        if not isinstance(error, json.JSONDecodeError):
            return False
        return error.msg.startswith("Unterminated string") or error.pos >= len(self.text) - 6

    def fail(self, message: str) -> MalformedRecord:
        return MalformedRecord(message, file=self.source.name, line=self._line)


def array_objects(source: TextSource) -> Iterator[tuple[int, Any]]:
    buffer = _ArrayBuffer(source)
    if buffer.peek() != "[":
        raise buffer.fail(BROKEN_JSON.format(detail="a JSON array must start with '['"))
    buffer.advance(buffer.pos + 1)
    if buffer.peek() == "]":
        buffer.advance(buffer.pos + 1)
    else:
        while True:
            buffer.peek()
            yield buffer.decode()
            found = buffer.peek()
            if found == ",":
                buffer.advance(buffer.pos + 1)
                continue
            if found == "]":
                buffer.advance(buffer.pos + 1)
                break
            if found is None:
                raise buffer.fail(ARRAY_UNCLOSED)
            raise buffer.fail(
                ARRAY_SEPARATOR.format(found=buffer.text[buffer.pos : buffer.pos + 20])
            )
    found = buffer.peek()
    if found is not None:
        raise buffer.fail(ARRAY_TRAILING.format(found=buffer.text[buffer.pos : buffer.pos + 20]))
