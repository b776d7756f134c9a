"""dataset_import and dataset_create_from_rows: the only code that writes datasets and their
examples."""

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils.text import get_valid_filename

from trainer.datasets import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_RATIOS,
    DatasetError,
    Issue,
    PreparedDataset,
    ReadOptions,
    prepare_dataset,
)
from trainer.datasets.errors import EmptyDataset
from trainer.datasets.hub import HUB_PREFIX, hub_fetch
from trainer.datasets.normalise import TokenCounter
from trainer.datasets.pipeline import Row, prepare_rows
from trainer.models import Dataset, DatasetKind, Example

NAME_TAKEN = "a dataset named {name!r} already exists; choose another name"
INVALID_NAME = (
    "dataset name {name!r} must be 1-100 letters, digits, '-' or '_' (it appears in URLs)"
)
# /datasets/upload/ would hide the detail page of a dataset with this name.
RESERVED_NAME = "dataset name {name!r} is reserved; choose another name"
REFUSED_ERRORS = "refused: {n} lint error(s); nothing was stored"
REFUSED_STRICT = "refused in strict mode: {n} lint warning(s); nothing was stored"
NO_ROWS = "no rows to store"
CUSTOM_TOKENIZER = "custom"

RESERVED_NAMES = frozenset({"upload"})
_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,100}$")
BATCH_SIZE = 1000


class DatasetNameError(ValueError):
    """The name is invalid, reserved or already taken."""


@dataclass
class DatasetImportResult:
    name: str
    prepared: PreparedDataset
    dataset: Dataset | None
    refused: str = ""

    @property
    def imported(self) -> bool:
        return self.dataset is not None

    @property
    def issues(self) -> list[Issue]:
        return self.prepared.issues

    @property
    def counts(self) -> dict[str, int]:
        return self.prepared.counts

    def report(self) -> dict:
        """The report as the command's ``--json`` prints it."""
        return {
            "dataset": self.name,
            "counts": dict(self.counts),
            "issues": [issue.as_dict() for issue in self.issues],
        }


def dataset_name_check(name: str) -> None:
    if not _SLUG.match(name):
        raise DatasetNameError(INVALID_NAME.format(name=name))
    if name.lower() in RESERVED_NAMES:
        raise DatasetNameError(RESERVED_NAME.format(name=name))
    if Dataset.objects.filter(name=name).exists():
        raise DatasetNameError(NAME_TAKEN.format(name=name))


@dataclass(frozen=True)
class ImportSpec:
    """How a dataset is read, linted and split: the same for a file, an upload and the hub, so
    a new option is added here once instead of to every way in."""

    options: ReadOptions | None = None
    split: Sequence[float] = DEFAULT_RATIOS
    seed: int = 0
    strict: bool = False  # refuse on lint warnings too
    count_tokens: TokenCounter | None = None
    tokenizer: str | None = None
    max_tokens: int = DEFAULT_MAX_TOKENS


def dataset_import(
    *,
    path: str | Path,
    name: str,
    spec: ImportSpec | None = None,
    source_filename: str | None = None,
    created_by: AbstractBaseUser | None = None,
) -> DatasetImportResult:
    """Read, lint and split the file (or saved dataset folder), then store the dataset and its
    examples in one transaction, or store nothing when lint refuses it (errors; warnings too
    when ``strict``).

    Raises ``DatasetNameError`` for a bad or taken name, ``DatasetError`` for unusable input
    and ``InvalidSplit`` for bad ratios; in every case nothing is stored.
    """
    dataset_name_check(name)
    spec = spec or ImportSpec()
    tokenizer = spec.tokenizer
    if spec.count_tokens is not None and not tokenizer:
        tokenizer = CUSTOM_TOKENIZER
    prepared = prepare_dataset(
        path,
        options=spec.options,
        ratios=spec.split,
        seed=spec.seed,
        count_tokens=spec.count_tokens,
        tokenizer=tokenizer,
        max_tokens=spec.max_tokens,
    )
    result = DatasetImportResult(name=name, prepared=prepared, dataset=None)
    if prepared.errors:
        result.refused = REFUSED_ERRORS.format(n=prepared.errors)
    elif spec.strict and prepared.warnings:
        result.refused = REFUSED_STRICT.format(n=prepared.warnings)
    else:
        filename = (source_filename or Path(path).name)[:255]
        result.dataset = _store(name=name, prepared=prepared, filename=filename, user=created_by)
    return result


@transaction.atomic
def dataset_create_from_rows(
    *,
    name: str,
    rows: Sequence[Row],
    provenance: dict,
    validation_share: float,
    seed: int = 0,
    kind: str = DatasetKind.PREFERENCES,
    created_by: AbstractBaseUser | None = None,
) -> Dataset:
    """Store canonical rows made elsewhere (a preference set built from an expert study) as a
    dataset the trainer reads like any other: hashed, and split train/validation by a seeded,
    content-based draw that keeps rows sharing a prompt on one side. ``provenance`` says what
    made it. Raises ``DatasetNameError`` for a bad or taken name, ``EmptyDataset`` for no rows
    and ``InvalidSplit`` for a bad share; in every case nothing is stored."""
    dataset_name_check(name)
    if not rows:
        raise EmptyDataset(NO_ROWS, file=name)
    prepared = prepare_rows(
        rows, ratios=(1 - validation_share, validation_share, 0, 0), seed=seed, format=kind
    )
    return _store(
        name=name,
        prepared=prepared,
        filename="",
        user=created_by,
        kind=kind,
        provenance=provenance,
    )


# Only the writes are one transaction: reading and linting a large file takes a while, and on
# SQLite (IMMEDIATE transactions) holding the write lock that long would stall every rater.
@transaction.atomic
def _store(
    *,
    name: str,
    prepared: PreparedDataset,
    filename: str,
    user: AbstractBaseUser | None,
    kind: str = DatasetKind.EXAMPLES,
    provenance: dict | None = None,
) -> Dataset:
    try:
        with transaction.atomic():
            dataset = Dataset.objects.create(
                name=name,
                kind=kind,
                provenance=provenance or {},
                source_filename=filename,
                format=prepared.format,
                content_hash=prepared.content_hash,
                split_ratios=list(prepared.ratios),
                seed=prepared.seed,
                lint_report=[issue.as_dict() for issue in prepared.issues],
                lint_errors=prepared.errors,
                lint_warnings=prepared.warnings,
                tokenizer=prepared.tokenizer[:255],
                created_by=user,
            )
    except IntegrityError:
        # Another import took the name between the check and this insert.
        raise DatasetNameError(NAME_TAKEN.format(name=name)) from None
    Example.objects.bulk_create(
        (
            Example(
                dataset=dataset,
                index=example.index,
                source_line=example.line,
                messages=example.messages,
                split=example.split,
                content_hash=example.content_hash,
                token_count=example.token_count,
                rejected=example.rejected or "",
            )
            for example in prepared.examples
        ),
        batch_size=BATCH_SIZE,
    )
    return dataset


def dataset_import_upload(
    *,
    upload: UploadedFile,
    name: str,
    spec: ImportSpec | None = None,
    created_by: AbstractBaseUser | None = None,
) -> DatasetImportResult:
    """Import an uploaded file. It is streamed to disk in chunks, and kept as
    ``MEDIA_ROOT/datasets/<name>/<filename>`` only when the import succeeds."""
    dataset_name_check(name)
    filename = _safe_filename(upload.name)
    incoming = Path(settings.MEDIA_ROOT) / "datasets" / ".incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    # The suffix matters: .csv and .tsv help format detection (Parquet is told by its bytes).
    handle, temporary = tempfile.mkstemp(dir=incoming, suffix=Path(filename).suffix)
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        result = dataset_import(
            path=temporary, name=name, spec=spec, source_filename=filename, created_by=created_by
        )
    except DatasetError as error:
        # Name the file the user uploaded, not the temporary copy.
        error.file = filename
        raise
    else:
        if result.imported:
            kept = Path(settings.MEDIA_ROOT) / "datasets" / name / filename
            kept.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, kept)
        return result
    finally:
        Path(temporary).unlink(missing_ok=True)


def _safe_filename(name: str | None) -> str:
    try:
        return get_valid_filename(Path(name or "").name)[:200]
    except SuspiciousFileOperation:
        return "upload"


def dataset_import_hub(
    *,
    repo: str,
    hub_split: str,
    name: str,
    spec: ImportSpec | None = None,
    created_by: AbstractBaseUser | None = None,
) -> DatasetImportResult:
    """Import one split of a hub dataset: saved to a temporary folder, read from there like any
    saved dataset, then removed. Raises ``HubUnavailable`` when it cannot be had."""
    dataset_name_check(name)
    incoming = Path(settings.MEDIA_ROOT) / "datasets" / ".incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=incoming) as folder:
        saved = hub_fetch(repo, split=hub_split, into=Path(folder) / "saved")
        try:
            return dataset_import(
                path=saved,
                name=name,
                spec=spec,
                source_filename=f"{HUB_PREFIX}{repo} ({hub_split})",
                created_by=created_by,
            )
        except DatasetError as error:
            error.file = f"{HUB_PREFIX}{repo}"
            raise
