"""Read a dataset file as UTF-8 text, piece by piece, without ever holding it whole.

Undecodable bytes do not stop the reading: they become U+FFFD and the line is remembered, so the
linter can report ``invalid-utf8`` with line numbers. A file that is plainly binary (NUL bytes or
mostly undecodable bytes at its start) is refused as not text.
"""

import codecs
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from trainer.datasets.errors import (
    EMPTY_FILE,
    NOT_TEXT,
    RECORD_TOO_LARGE,
    EmptyDataset,
    MalformedRecord,
    NotText,
)

PIECE_BYTES = 1 << 20
# One example larger than this is certainly a mistake (a whole corpus on one line, say), and
# refusing it keeps memory bounded.
MAX_RECORD_BYTES = 32 << 20
SNIFF_BYTES = 8192
MAX_UNDECODABLE_SHARE = 0.3


@dataclass(frozen=True)
class Piece:
    """Part of one source line; ``complete`` when the piece ends that line."""

    line: int
    text: str
    complete: bool


@dataclass
class TextSource:
    path: Path
    # Lines with undecodable bytes, found by any pass over the file.
    bad_lines: set[int] = field(default_factory=set)

    @property
    def invalid_utf8_lines(self) -> list[int]:
        return sorted(self.bad_lines)

    @property
    def name(self) -> str:
        return str(self.path)

    def check_is_text(self) -> None:
        """Refuse empty and binary files before any parsing."""
        with open(self.path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
        if not head.strip():
            raise EmptyDataset(EMPTY_FILE, file=self.name)
        if b"\x00" in head:
            raise NotText(NOT_TEXT.format(offset=head.index(b"\x00")), file=self.name)
        undecodable = len(head) - len(head.decode("utf-8", "ignore").encode("utf-8"))
        # A cut through a multi-byte character at the end of the sniffed block is not binary.
        if undecodable > 3 and undecodable / len(head) > MAX_UNDECODABLE_SHARE:
            raise NotText(NOT_TEXT.format(offset=0), file=self.name)

    def pieces(self) -> Iterator[Piece]:
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        line = 1
        first = True
        complete = True
        with open(self.path, "rb") as handle:
            while raw := handle.readline(PIECE_BYTES):
                text = self._decode(decoder, raw, line, final=False)
                if first:
                    text = text.removeprefix("\ufeff")
                    first = False
                complete = raw.endswith(b"\n")
                if complete:
                    yield Piece(line, text, complete)
                    line += 1
                else:
                    yield Piece(line, text, complete=False)
        if not complete:
            # The last line has no newline: flush any dangling partial character and end it.
            yield Piece(line, self._decode(decoder, b"", line, final=True), complete=True)

    def _decode(
        self, decoder: codecs.IncrementalDecoder, raw: bytes, line: int, final: bool
    ) -> str:
        state = decoder.getstate()
        try:
            return decoder.decode(raw, final)
        except UnicodeDecodeError:
            self.bad_lines.add(line)
            lenient = codecs.getincrementaldecoder("utf-8")("replace")
            lenient.setstate(state)
            text = lenient.decode(raw, final)
            decoder.setstate(lenient.getstate())
            return text

    def lines(self) -> Iterator[tuple[int, str]]:
        """Whole lines with their newline kept (the csv module needs it), 1-based numbers."""
        parts: list[str] = []
        size = 0
        for piece in self.pieces():
            parts.append(piece.text)
            size += len(piece.text)
            if size > MAX_RECORD_BYTES:
                raise MalformedRecord(
                    RECORD_TOO_LARGE.format(limit_mb=MAX_RECORD_BYTES >> 20),
                    file=self.name,
                    line=piece.line,
                )
            if piece.complete:
                yield piece.line, "".join(parts)
                parts, size = [], 0
