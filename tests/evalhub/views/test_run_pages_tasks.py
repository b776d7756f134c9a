"""The run page's background tasks: what "Generate + score" asks for, and the live part that
follows a task until it ends and says why it failed, at the top."""

import pytest
from django.test import override_settings
from django.utils import timezone
from django.utils.html import escape
from django_tasks_db.models import DBTaskResult

from evalhub.services.systems import system_get_or_create
from evalhub.tasks import evaluate
from tests.factories import FineTuneRunFactory
from trainer.engine.generate import DecodingConfig
from trainer.models import RunStatus
from trainer.tasks import RUN_FAILED, RunFailed, finetune

pytestmark = pytest.mark.django_db
DATABASE_TASKS = {
    "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "gpu"]}
}
DECODING_REFUSED = "system 'base:tiny:run-1' already has outputs generated with 72 tokens"
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def evaluated_run(tmp_path):
    """A trained run whose systems made their outputs with the demo's 72 new tokens."""
    run = FineTuneRunFactory(status=RunStatus.SUCCEEDED, adapter_path=str(tmp_path))
    demo = {**DecodingConfig(max_new_tokens=72).as_dict(), "quantization": "none"}
    for kind in ("base", "adapter"):
        system = system_get_or_create(run=run, kind=kind)
        system.decoding = demo
        system.save(update_fields=["decoding"])
    return run


def task_row(run, task, status, **fields) -> DBTaskResult:
    with override_settings(TASKS=DATABASE_TASKS):
        queued = task.enqueue(run_id=run.pk)
    DBTaskResult.objects.filter(pk=queued.id).update(status=status, **fields)
    return DBTaskResult.objects.get(pk=queued.id)


def failed(run, task, class_path, message) -> DBTaskResult:
    trace = f'Traceback (most recent call last):\n  File "x.py", line 1\n{class_path}: {message}\n'
    return task_row(
        run,
        task,
        "FAILED",
        exception_class_path=class_path,
        traceback=trace,
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )


def test_generate_and_score_reuses_the_decoding_settings_of_the_runs_outputs(
    manager_client, evaluated_run
):
    with override_settings(TASKS=DATABASE_TASKS):
        manager_client.post(f"/runs/{evaluated_run.pk}/evaluate/")
    kwargs = DBTaskResult.objects.get().args_kwargs["kwargs"]
    assert kwargs == {"run_id": evaluated_run.pk, **DecodingConfig(max_new_tokens=72).as_dict()}


def test_generate_and_score_of_a_run_without_outputs_uses_the_default_settings(
    manager_client, tmp_path
):
    run = FineTuneRunFactory(status=RunStatus.SUCCEEDED, adapter_path=str(tmp_path))
    with override_settings(TASKS=DATABASE_TASKS):
        manager_client.post(f"/runs/{run.pk}/evaluate/")
    kwargs = DBTaskResult.objects.get().args_kwargs["kwargs"]
    assert kwargs == {"run_id": run.pk, **DecodingConfig().as_dict()}


def test_the_live_part_keeps_polling_while_a_task_of_an_ended_run_waits(
    manager_client, evaluated_run
):
    task_row(evaluated_run, evaluate, "READY")
    live = manager_client.get(f"/runs/{evaluated_run.pk}/", **HTMX).content.decode()
    assert 'hx-trigger="every 2s"' in live
    assert "Waiting for a worker on the <code>gpu</code> queue" in live


def test_a_failed_task_shows_its_message_at_the_top_of_the_live_part(manager_client, evaluated_run):
    failed(evaluated_run, evaluate, "evalhub.selectors.outputs.OutputsError", DECODING_REFUSED)
    live = manager_client.get(f"/runs/{evaluated_run.pk}/", **HTMX).content.decode()
    assert 'hx-trigger="every 2s"' not in live  # nothing is left to follow
    assert "Waiting for a worker" not in live
    assert f'<p class="error run-task-error">{escape(DECODING_REFUSED)}</p>' in live
    assert live.index(escape(DECODING_REFUSED)) < live.index("run-progress")
    assert "<td>evaluate</td><td>gpu</td><td>failed</td>" in live


def test_a_failed_run_and_its_task_agree_and_the_queued_banner_is_gone(manager_client):
    error = "base model 'nobody/missing' is not a directory and not on the hub"
    run = FineTuneRunFactory(status=RunStatus.FAILED, error=error)
    message = RUN_FAILED.format(id=run.pk, error=error)
    failed(run, finetune, f"{RunFailed.__module__}.{RunFailed.__qualname__}", message)
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    assert "status-failed" in html
    assert "<td>finetune</td><td>gpu</td><td>failed</td>" in html
    assert f'<p class="error run-task-error">{escape(message)}</p>' in html
    assert "successful" not in html and "Waiting for a worker" not in html
    assert "is queued" not in html


def test_a_new_run_page_says_queued_in_its_live_part_not_in_a_message(manager_client):
    run = FineTuneRunFactory(status=RunStatus.QUEUED)
    task_row(run, finetune, "READY")
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    assert 'class="messages"' not in html
    assert "Waiting for a worker on the <code>gpu</code> queue" in html
    run.status = RunStatus.RUNNING
    run.save(update_fields=["status"])
    DBTaskResult.objects.update(status="RUNNING")
    live = manager_client.get(f"/runs/{run.pk}/", **HTMX).content.decode()
    assert "Waiting for a worker" not in live and 'hx-trigger="every 2s"' in live
