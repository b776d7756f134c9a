"""Background tasks of the training app, run by django-tasks-db's worker command.

Thin on purpose: each task calls the same services as ``manage.py finetune``. Heavy work goes to
the "gpu" queue, which only the workers started on machines with the hardware take:

    python manage.py db_worker --queue-name gpu --no-reload        # each GPU machine
    python manage.py db_worker --queue-name default --no-reload    # the web host (optional)

Two workers never take the same task: django-tasks-db claims a task with
``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL (an exclusive transaction on SQLite).
"""

from __future__ import annotations

from typing import Any

from django_tasks import task

from trainer.models import FineTuneRun, RunStatus
from trainer.services.run_progress import CTRL_C_INTERRUPTS, StopRequest, stop_on_signals
from trainer.services.run_training import run_execute
from trainer.services.runs import RunError, run_mark_orphans

GPU_QUEUE = "gpu"
RUN_FAILED = "run {id} failed: {error}"


class RunFailed(Exception):
    """The training task of a run that failed fails with it, with the run's error: the run page,
    the API and the worker's log then agree on what happened."""


@task(queue_name=GPU_QUEUE)
def finetune(run_id: int) -> dict[str, Any]:
    """Train the queued run ``run_id``; returns its final status.

    A run cancelled while it waited in the queue is skipped, not trained. A run that fails
    (a bad model id, a crash) fails its task too (``RunFailed``, with the run's error); a
    cancelled or interrupted run is a result, not a task failure.
    """
    # A worker taking a task is where a run left behind by a dead worker gets noticed.
    run_mark_orphans()
    run = FineTuneRun.objects.select_related("dataset", "base_model").get(pk=run_id)
    stop = StopRequest()
    with stop_on_signals(stop, CTRL_C_INTERRUPTS):
        try:
            run = run_execute(run=run, stop=stop)
        except RunError as error:
            run.refresh_from_db()
            return {"run": run.pk, "status": run.status, "skipped": str(error)}
    if run.status == RunStatus.FAILED:
        raise RunFailed(RUN_FAILED.format(id=run.pk, error=run.error))
    return {"run": run.pk, "status": run.status, "step": run.step}
