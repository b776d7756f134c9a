"""Reads about datasets that need more than one line."""

from django.db.models import Count, QuerySet

from trainer.datasets import SPLITS
from trainer.models import Dataset, Example


def dataset_split_counts(*, dataset: Dataset) -> dict[str, int]:
    """Examples per split, every split present (zero when empty), in train/validation/test order."""
    rows = (
        Example.objects.filter(dataset=dataset).order_by().values("split").annotate(n=Count("id"))
    )
    found = {row["split"]: row["n"] for row in rows}
    return {split: found.get(split, 0) for split in SPLITS}


def dataset_examples(*, dataset: Dataset, split: str) -> QuerySet[Example]:
    """The examples of one split in file order; the test split is the evaluation prompts."""
    return Example.objects.filter(dataset=dataset, split=split).order_by("index")


def dataset_preview(*, dataset: Dataset, per_split: int = 3) -> dict[str, list[Example]]:
    """The first few examples of each split, for the detail page."""
    return {
        split: list(dataset_examples(dataset=dataset, split=split)[:per_split]) for split in SPLITS
    }
