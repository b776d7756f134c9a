"""Reads about runs that need more than one line."""

from django.db.models import QuerySet

from trainer.models import FineTuneRun


def run_list() -> QuerySet[FineTuneRun]:
    """Every run, newest first, with what its row shows (dataset, base model, creator)."""
    return FineTuneRun.objects.select_related("dataset", "base_model", "created_by")
