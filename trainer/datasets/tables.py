"""Rows of Parquet files and of folders written by ``datasets.Dataset.save_to_disk``, as dicts.

Both are read through pyarrow, batch by batch, so memory stays bounded by one batch. A saved
dataset is Arrow IPC stream files listed in ``state.json`` (one split), or one such folder per
split named in ``dataset_dict.json``; the `datasets` library is not needed to read either.
Rows are numbered from 1 across the whole dataset.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trainer.datasets.errors import (
    ARROW_BROKEN,
    MISSING_TABLE_COLUMN,
    NOT_SAVED_DATASET,
    PARQUET_BROKEN,
    SAVED_DATASET_BROKEN,
    SPLIT_FOLDER_UNKNOWN,
    MalformedRecord,
    MissingField,
    UnknownFormat,
)
from trainer.datasets.records import SPLIT_ALIASES

PARQUET_MAGIC = b"PAR1"
BATCH_ROWS = 1024
STATE, DATASET_DICT = "state.json", "dataset_dict.json"

Row = tuple[int, dict[str, Any], str | None]  # row number, record, the folder's split


def is_parquet(path: Path) -> bool:
    if not path.is_file():
        return False
    with open(path, "rb") as handle:
        return handle.read(len(PARQUET_MAGIC)) == PARQUET_MAGIC


def _require(columns: list[str], named: tuple[str, ...], *, file: str) -> None:
    for column in named:
        if column not in columns:
            detail = MISSING_TABLE_COLUMN.format(column=column, columns=columns)
            raise MissingField(detail, file=file, row=1)


def parquet_rows(path: Path, *, named: tuple[str, ...] = ()) -> Iterator[Row]:
    """Rows of a Parquet file; ``named`` columns must exist."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    row = 0
    try:
        table = pq.ParquetFile(path)
        _require(table.schema_arrow.names, named, file=str(path))
        for batch in table.iter_batches(batch_size=BATCH_ROWS):
            for record in batch.to_pylist():
                row += 1
                yield row, record, None
    except (pa.ArrowException, OSError) as error:
        raise MalformedRecord(
            PARQUET_BROKEN.format(detail=error), file=str(path), row=row + 1
        ) from None


def saved_dataset_rows(path: Path, *, named: tuple[str, ...] = ()) -> Iterator[Row]:
    """Rows of a ``save_to_disk`` folder: one dataset, or every split of a dataset dict."""
    if (path / DATASET_DICT).is_file():
        splits = _json(path / DATASET_DICT, file=str(path)).get("splits", [])
        parts = []
        for split in splits:
            canonical = SPLIT_ALIASES.get(str(split).lower())
            if canonical is None:
                detail = SPLIT_FOLDER_UNKNOWN.format(split=split, folder=str(path / str(split)))
                raise MalformedRecord(detail, file=str(path))
            parts.append((path / str(split), canonical))
    elif (path / STATE).is_file():
        parts = [(path, None)]
    else:
        raise UnknownFormat(NOT_SAVED_DATASET, file=str(path))
    row = 0
    for folder, split in parts:
        for record in _arrow_records(folder, named=named, first_row=row + 1):
            row += 1
            yield row, record, split


def _json(path: Path, *, file: str) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        detail = SAVED_DATASET_BROKEN.format(name=path.name, detail=error)
        raise MalformedRecord(detail, file=file) from None
    if not isinstance(value, dict):
        detail = SAVED_DATASET_BROKEN.format(name=path.name, detail="not a JSON object")
        raise MalformedRecord(detail, file=file)
    return value


def _arrow_records(folder: Path, *, named: tuple[str, ...], first_row: int) -> Iterator[dict]:
    import pyarrow as pa

    state = _json(folder / STATE, file=str(folder))
    files = state.get("_data_files")
    if not isinstance(files, list) or not all(
        isinstance(f, dict) and isinstance(f.get("filename"), str) for f in files
    ):
        detail = SAVED_DATASET_BROKEN.format(name=STATE, detail="no list of '_data_files'")
        raise MalformedRecord(detail, file=str(folder))
    row = first_row
    for entry in files:
        name = Path(entry["filename"]).name  # never a path outside the folder
        try:
            with pa.memory_map(str(folder / name)) as source:
                stream = pa.ipc.open_stream(source)
                _require(stream.schema.names, named, file=str(folder))
                for batch in stream:
                    for record in batch.to_pylist():
                        yield record
                        row += 1
        except (pa.ArrowException, OSError) as error:
            detail = ARROW_BROKEN.format(name=name, detail=error)
            raise MalformedRecord(detail, file=str(folder), row=row) from None
