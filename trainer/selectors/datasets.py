"""Reads about datasets that need more than one line."""

from django.db.models import Count, Q, QuerySet

from trainer.datasets import SPLITS
from trainer.models import Dataset, DatasetKind, Example, Split


def dataset_list() -> QuerySet[Dataset]:
    """Every dataset, newest first, with ``example_count``, ``<split>_count`` and
    ``pair_count`` (preference pairs) annotated."""
    by_split = {
        f"{split}_count": Count("examples", filter=Q(examples__split=split)) for split in Split
    }
    # Explicit order: Meta.ordering does not apply to a GROUP BY query.
    return (
        Dataset.objects.select_related("created_by")
        .annotate(
            example_count=Count("examples"),
            pair_count=Count("examples", filter=~Q(examples__rejected="")),
            **by_split,
        )
        .order_by("-created_at", "-id")
    )


def dataset_split_counts(*, dataset: Dataset) -> dict[str, int]:
    """Examples per split, every split present (zero when empty), in train/validation/feedback/
    test order."""
    rows = (
        Example.objects.filter(dataset=dataset).order_by().values("split").annotate(n=Count("id"))
    )
    found = {row["split"]: row["n"] for row in rows}
    return {split: found.get(split, 0) for split in SPLITS}


def dataset_pair_count(*, dataset: Dataset, split: str | None = None) -> int:
    """Examples that are preference pairs: a chosen conversation with a rejected answer (of
    one split, when given)."""
    examples = Example.objects.filter(dataset=dataset).exclude(rejected="")
    return (examples.filter(split=split) if split else examples).count()


def preference_dataset(*, name: str) -> Dataset | None:
    """The preference set called ``name``: the dataset of that name, or else the latest version
    (``<name>-v<highest>``) of a preference set of that name."""
    exact = Dataset.objects.filter(name=name).first()
    if exact is not None:
        return exact
    versions = Dataset.objects.filter(kind=DatasetKind.PREFERENCES, name__startswith=f"{name}-v")
    numbered = [(int(d.name.rpartition("-v")[2]), d) for d in versions if _versioned(d.name, name)]
    return max(numbered, key=lambda found: found[0])[1] if numbered else None


def _versioned(candidate: str, name: str) -> bool:
    prefix, _, number = candidate.rpartition("-v")
    return prefix == name and number.isdigit()


def dataset_examples(*, dataset: Dataset, split: str) -> QuerySet[Example]:
    """The examples of one split in file order; the test split is the evaluation prompts."""
    return Example.objects.filter(dataset=dataset, split=split).order_by("index")


def dataset_preview(*, dataset: Dataset, per_split: int = 3) -> dict[str, list[Example]]:
    """The first few examples of each split, for the detail page."""
    return {
        split: list(dataset_examples(dataset=dataset, split=split)[:per_split]) for split in SPLITS
    }
