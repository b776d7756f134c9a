"""Queue the automated evaluation (generate + score) of a run for a GPU worker."""

from django.db import transaction
from django_tasks_db.models import DBTaskResult

from evalhub.services.systems import adapter_dir
from evalhub.tasks import evaluate
from trainer.models import FineTuneRun

WAITING_OR_RUNNING = ("READY", "RUNNING")  # django-tasks-db's statuses


@transaction.atomic
def run_evaluation_enqueue(*, run: FineTuneRun) -> tuple[str, bool]:
    """(task id, queued now). Refuses a run without an adapter (``OutputsError``); an
    evaluation already waiting or running for the run is returned instead of a second one."""
    adapter_dir(run)
    pending = (
        DBTaskResult.objects.select_for_update()
        .filter(
            task_path=evaluate.module_path,
            status__in=WAITING_OR_RUNNING,
            args_kwargs__kwargs__run_id=run.pk,
        )
        .first()
    )
    if pending is not None:
        return str(pending.id), False
    return evaluate.enqueue(run_id=run.pk).id, True
