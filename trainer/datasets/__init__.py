"""Dataset reading, normalisation, linting and splitting: plain Python, no Django, no torch.

The one entry point most callers need is ``prepare_dataset(path, ...)``; the web and the
``import_dataset`` command reach it through ``trainer.services.datasets.dataset_import``.
"""

from trainer.datasets.errors import (
    DatasetError,
    EmptyDataset,
    InvalidSplit,
    MalformedRecord,
    MissingField,
    NotText,
    UnknownFormat,
)
from trainer.datasets.lint import CODES, SEVERITY, Issue
from trainer.datasets.normalise import CHAR_ESTIMATE, content_hash, estimate_tokens
from trainer.datasets.options import AUTO, ReadOptions
from trainer.datasets.pipeline import (
    DEFAULT_MAX_TOKENS,
    PreparedDataset,
    PreparedExample,
    prepare_dataset,
)
from trainer.datasets.readers import DatasetReader
from trainer.datasets.records import FORMATS
from trainer.datasets.split import DEFAULT_RATIOS, SPLITS, parse_ratios

__all__ = [
    "AUTO",
    "CHAR_ESTIMATE",
    "CODES",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_RATIOS",
    "FORMATS",
    "SEVERITY",
    "SPLITS",
    "DatasetError",
    "DatasetReader",
    "EmptyDataset",
    "InvalidSplit",
    "Issue",
    "MalformedRecord",
    "MissingField",
    "NotText",
    "PreparedDataset",
    "PreparedExample",
    "ReadOptions",
    "UnknownFormat",
    "content_hash",
    "estimate_tokens",
    "parse_ratios",
    "prepare_dataset",
]
