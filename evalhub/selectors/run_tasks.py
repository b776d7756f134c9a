"""The background tasks of a run: its training, and the evaluations queued for it.

This is the one place that knows the task modules of both apps: trainer's ``finetune`` and
evalhub's ``generate``, ``score`` and ``evaluate``, each enqueued with the run's id as the
keyword ``run_id``.
"""

from django.db.models import QuerySet
from django_tasks_db.models import DBTaskResult

from evalhub import tasks as evaluation_tasks
from trainer import tasks as training_tasks

RUN_TASKS = (
    training_tasks.finetune,
    evaluation_tasks.generate,
    evaluation_tasks.score,
    evaluation_tasks.evaluate,
)


def run_tasks(*, run_id: int) -> QuerySet[DBTaskResult]:
    """Every training or evaluation task of this run, newest first."""
    return DBTaskResult.objects.filter(
        task_path__in=[task.module_path for task in RUN_TASKS],
        args_kwargs__kwargs__run_id=run_id,
    ).order_by("-enqueued_at")
