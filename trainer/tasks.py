"""Background tasks of the training app, run by django-tasks-db's worker command.

Thin on purpose: each task calls the same services as ``manage.py finetune``. Heavy work goes to
the "gpu" queue, which only the workers started on machines with the hardware take:

    python manage.py db_worker --queue-name gpu --no-reload        # each GPU machine
    python manage.py db_worker --queue-name default --no-reload    # the web host (optional)

Two workers never take the same task: django-tasks-db claims a task with
``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL (an exclusive transaction on SQLite).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django_tasks import task

from trainer.models import FineTuneRun, RunStatus
from trainer.services.run_progress import StopRequest
from trainer.services.run_training import run_execute
from trainer.services.runs import RunError, run_mark_orphans

GPU_QUEUE = "gpu"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@task(queue_name=GPU_QUEUE)
def finetune(run_id: int) -> dict[str, Any]:
    """Train the queued run ``run_id``; returns its final status.

    A run cancelled while it waited in the queue is skipped, not trained. A failed run is a
    result, not a task failure: the run page shows why. Only a crash fails the task.
    """
    # A worker taking a task is where a run left behind by a dead worker gets noticed.
    run_mark_orphans()
    run = FineTuneRun.objects.select_related("dataset", "base_model").get(pk=run_id)
    stop = StopRequest()
    with stop_on_worker_signals(stop):
        try:
            run = run_execute(run=run, stop=stop)
        except RunError as error:
            run.refresh_from_db()
            return {"run": run.pk, "status": run.status, "skipped": str(error)}
    return {"run": run.pk, "status": run.status, "step": run.step}


@contextmanager
def stop_on_worker_signals(stop: StopRequest) -> Iterator[None]:
    """While a run trains, the first SIGTERM or Ctrl-C stops it at the next step with a
    checkpoint ("interrupted": the worker is going away, nobody cancelled) and lets the worker
    finish its shutdown afterwards; a second one stops at once. Outside the main thread
    (the immediate backend in a web request) signals are left alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def handler(signum: int, frame: Any) -> None:
        if stop.requested:
            raise KeyboardInterrupt
        stop.request(RunStatus.INTERRUPTED)
        # The worker's own handler marks it as shutting down: it exits after this task.
        chained = previous.get(signum)
        if callable(chained) and chained is not signal.default_int_handler:
            chained(signum, frame)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
