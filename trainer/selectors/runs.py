"""Reads about runs that need more than one line."""

from django.db.models import QuerySet

from trainer.models import Dataset, FineTuneRun


def run_list() -> QuerySet[FineTuneRun]:
    """Every run, newest first, with what its row shows (dataset, base model, creator)."""
    return FineTuneRun.objects.select_related("dataset", "base_model", "created_by")


def run_ancestors(*, run: FineTuneRun) -> list[FineTuneRun]:
    """The run, then the run it started from, and so on to the first (``from_run`` chain)."""
    chain, seen = [], set()
    current: FineTuneRun | None = run
    while current is not None and current.pk not in seen:
        seen.add(current.pk)
        chain.append(current)
        current = (
            FineTuneRun.objects.select_related("dataset", "base_model", "from_run")
            .filter(pk=current.from_run_id)
            .first()
        )
    return chain


def run_root(*, run: FineTuneRun) -> FineTuneRun:
    """The first run of the chain: the one that started from the base model itself."""
    return run_ancestors(run=run)[-1]


def evaluation_dataset(*, run: FineTuneRun) -> Dataset:
    """The dataset whose held-out prompts a run answers and is judged on: the first run's of its
    chain. A DPO run trains on a preference set, which has no test prompts; it is judged on the
    same test prompts as the adapter it improves, so the two can be compared."""
    return run_root(run=run).dataset if run.from_run_id else run.dataset
