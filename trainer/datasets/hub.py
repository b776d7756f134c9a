"""Datasets on the Hugging Face hub by name (``hub:OWNER/NAME``), through the `datasets` library.

`datasets` is optional: it is imported only here, only when a hub dataset is asked for. The
split is loaded, saved to a local folder with ``save_to_disk`` and read from there like any
saved dataset, so the rest of the import never knows it came from the network.
"""

from pathlib import Path
from typing import Any

from trainer.datasets.errors import DatasetError

HUB_PREFIX = "hub:"
DEFAULT_HUB_SPLIT = "train"
HUB_NEEDS_DATASETS = (
    "reading hub datasets needs the `datasets` library: pip install datasets "
    "(or save the dataset to disk where it is installed and import that folder)"
)
HUB_LOAD_FAILED = "cannot load split {split!r} of hub dataset {repo!r} (no network?): {detail}"
HUB_BAD_NAME = "a hub dataset is named hub:OWNER/NAME, found {name!r}"


class HubUnavailable(DatasetError):
    """The hub dataset cannot be had: no `datasets` library, no network, no such dataset."""


def hub_repo(spec: str) -> str | None:
    """``OWNER/NAME`` when ``spec`` names a hub dataset, else None."""
    if not spec.startswith(HUB_PREFIX):
        return None
    repo = spec.removeprefix(HUB_PREFIX)
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise HubUnavailable(HUB_BAD_NAME.format(name=spec))
    return repo


def load_hub_split(repo: str, split: str) -> Any:
    """The one call that touches the network: a ``datasets.Dataset`` of one split."""
    try:
        import datasets
    except ImportError:
        raise HubUnavailable(HUB_NEEDS_DATASETS) from None
    return datasets.load_dataset(repo, split=split)


def hub_fetch(repo: str, *, split: str, into: Path) -> Path:
    """Save one split of a hub dataset under ``into`` and return the folder."""
    try:
        dataset = load_hub_split(repo, split)
    except HubUnavailable:
        raise
    # datasets raises whatever its transport does (ConnectionError, httpx errors, FileNotFound
    # for an unknown name, ValueError for an unknown split): all mean "cannot have it".
    except Exception as error:
        detail = HUB_LOAD_FAILED.format(split=split, repo=repo, detail=error)
        raise HubUnavailable(detail, file=f"{HUB_PREFIX}{repo}") from None
    dataset.save_to_disk(str(into))
    return into
