"""Runs for the workers: create (or resume) a run and queue its training, and notice runs
whose worker died.

A new run and its task row commit together, so there is never a queued run without a task nor a
task for a run that does not exist (a resumed run that cannot be queued is marked failed). A
worker then picks the task up (``trainer.tasks``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django_tasks.base import Task
from django_tasks_db.models import DBTaskResult

from trainer.models import FineTuneRun, RunStatus
from trainer.services.runs import RunSpec, run_create, run_create_resume, run_mark_orphans
from trainer.tasks import finetune


class RunOrphaned(Exception):
    """What a task (training, or a judge run's) failed with when its worker died mid-run. Never
    raised: the task row stores its path, and django-tasks imports it when anyone reads the
    task's error."""


# DBTaskResult statuses, as django-tasks-db stores them.
TASK_RUNNING, TASK_FAILED = "RUNNING", "FAILED"
ORPHANED_TASK = f"{RunOrphaned.__module__}.{RunOrphaned.__qualname__}"
NOT_QUEUED = "the run could not be queued for a worker: {error}"


def run_enqueue(*, run: FineTuneRun) -> str:
    """Queue the run's training for a GPU worker; returns the task id. The run id goes as a
    keyword so the run page can find the run's tasks (``trainer.selectors.run_tasks``).

    Should queueing fail, the run is marked failed with the reason, so it does not wait in the
    queue without a task (inside ``run_submit``'s transaction the run is rolled back instead).
    """
    try:
        return finetune.enqueue(run_id=run.pk).id
    except Exception as error:
        FineTuneRun.objects.filter(pk=run.pk).update(
            status=RunStatus.FAILED,
            error=NOT_QUEUED.format(error=error),
            finished_at=timezone.now(),
        )
        raise


@transaction.atomic
def run_submit(*, spec: RunSpec, created_by: AbstractBaseUser | None = None) -> FineTuneRun:
    """A queued run (``run_create`` checks the input) and its training task."""
    run = run_create(spec=spec, created_by=created_by)
    run_enqueue(run=run)
    return run


def run_submit_resume(
    *, run: FineTuneRun, created_by: AbstractBaseUser | None = None
) -> FineTuneRun:
    """A new queued run continuing ``run`` from its last checkpoint, and its training task.

    Not one transaction: ``run_create_resume`` checks the checkpoint and the base model outside
    any (a packaged base may need its one-time conversion, which must not hold SQLite's write
    lock) and stores the run in its own; ``run_enqueue`` fails the run if it cannot queue it.
    """
    resumed = run_create_resume(run=run, created_by=created_by)
    run_enqueue(run=resumed)
    return resumed


def runs_check_orphans() -> list[FineTuneRun]:
    """Mark runs whose worker died as interrupted, and fail their training tasks (the dead
    worker never will). Costs one cheap query while nothing is running, so pages call it."""
    if not FineTuneRun.objects.filter(status=RunStatus.RUNNING).exists():
        return []
    orphans = run_mark_orphans()
    for run in orphans:
        task_fail_orphaned(task=finetune, kwargs={"run_id": run.pk}, error=run.error)
    return orphans


def task_fail_orphaned(*, task: Task, kwargs: dict[str, Any], error: str) -> None:
    """Fail the task rows that a dead worker left running for ``task`` with these keyword
    arguments (the dead worker never will), with the record's error as their traceback."""
    lookups = {f"args_kwargs__kwargs__{key}": value for key, value in kwargs.items()}
    DBTaskResult.objects.filter(task_path=task.module_path, status=TASK_RUNNING, **lookups).update(
        status=TASK_FAILED,
        finished_at=timezone.now(),
        exception_class_path=ORPHANED_TASK,
        traceback=error,
    )
