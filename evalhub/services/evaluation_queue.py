"""Queue the automated evaluation (generate + score) of a run for a GPU worker."""

from dataclasses import fields

from django.db import transaction
from django_tasks_db.models import DBTaskResult

from evalhub.selectors.outputs import run_systems
from evalhub.selectors.run_tasks import PENDING
from evalhub.services.systems import adapter_dir
from evalhub.tasks import evaluate
from trainer.engine.generate import DecodingConfig
from trainer.models import FineTuneRun


@transaction.atomic
def run_evaluation_enqueue(*, run: FineTuneRun) -> tuple[str, bool]:
    """(task id, queued now). Refuses a run without an adapter (``OutputsError``); an
    evaluation already waiting or running for the run is returned instead of a second one.

    The new outputs are made with the decoding settings the run's systems already have (the
    demo's are not the default), since generation refuses to mix settings in one system."""
    adapter_dir(run)
    pending = (
        DBTaskResult.objects.select_for_update()
        .filter(
            task_path=evaluate.module_path,
            status__in=PENDING,
            args_kwargs__kwargs__run_id=run.pk,
        )
        .first()
    )
    if pending is not None:
        return str(pending.id), False
    return evaluate.enqueue(run_id=run.pk, **_decoding_in_use(run).as_dict()).id, True


def _decoding_in_use(run: FineTuneRun) -> DecodingConfig:
    """The settings of the run's outputs so far (base first, else the adapter), else the
    defaults. A system's ``decoding`` also records the precision, which is not a setting."""
    names = [f.name for f in fields(DecodingConfig)]
    for system in run_systems(run=run).values():
        if system is not None and system.decoding:
            return DecodingConfig(**{n: system.decoding[n] for n in names if n in system.decoding})
    return DecodingConfig()
