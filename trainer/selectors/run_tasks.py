"""The background tasks of a run: its training, and the evaluations queued for it."""

from django.db.models import QuerySet
from django_tasks_db.models import DBTaskResult


def run_tasks(*, run_id: int) -> QuerySet[DBTaskResult]:
    """Every queued task whose ``run_id`` keyword is this run, newest first. Tasks are always
    enqueued with ``run_id=`` as a keyword (``trainer.tasks``, ``evalhub.tasks``)."""
    return DBTaskResult.objects.filter(args_kwargs__kwargs__run_id=run_id).order_by("-enqueued_at")
