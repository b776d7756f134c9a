"""The background tasks of a run: its training, and the evaluations queued for it.

This is the one place that knows the task modules of both apps: trainer's ``finetune`` and
evalhub's ``generate``, ``score`` and ``evaluate``, each enqueued with the run's id as the
keyword ``run_id``.
"""

from dataclasses import dataclass

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
PENDING = ("READY", "RUNNING")  # django-tasks-db's statuses of a task not finished yet
FAILED = "FAILED"


def run_tasks(*, run_id: int) -> QuerySet[DBTaskResult]:
    """Every training or evaluation task of this run, newest first."""
    return DBTaskResult.objects.filter(
        task_path__in=[task.module_path for task in RUN_TASKS],
        args_kwargs__kwargs__run_id=run_id,
    ).order_by("-enqueued_at")


@dataclass(frozen=True)
class RunTask:
    """A task as the run page shows it: the row, and for a failed task what went wrong."""

    task: DBTaskResult
    error: str  # the exception's message, without the traceback; "" unless failed

    @property
    def pending(self) -> bool:
        return self.task.status in PENDING


def run_task_list(*, run_id: int, limit: int) -> list[RunTask]:
    """The run's ``limit`` newest tasks, each with its readable error."""
    return [RunTask(task=t, error=task_error(t)) for t in run_tasks(run_id=run_id)[:limit]]


def task_error(task: DBTaskResult) -> str:
    """The message a failed task's exception carried: the traceback's last line less the class
    name (``OutputsError: system 'base' already has…`` gives ``system 'base' already has…``).
    A task failed by evalhub itself (a dead worker) stores the message alone."""
    if task.status != FAILED:
        return ""
    text = task.traceback.strip()
    short_name = task.exception_class_path.rsplit(".", 1)[-1]
    for marker in (f"{task.exception_class_path}: ", f"{short_name}: "):
        at = text.rfind(marker)
        if at != -1:
            return text[at + len(marker) :].strip()
    return text or short_name
