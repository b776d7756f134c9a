"""The background tasks and the queueing services, in this process (the immediate backend or
the database backend without a worker). Worker processes: test_tasks_workers.py."""

import os
import shutil
import socket
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django_tasks.exceptions import InvalidTaskError
from django_tasks_db.models import DBTaskResult

from tests.factories import FineTuneRunFactory
from tests.trainer.run_fixtures import colour_dataset, colour_spec, small_config
from tests.trainer.worker_support import DATABASE_TASKS, dead_pid
from trainer.engine.checkpoint import read_checkpoint_info
from trainer.management.commands.finetune import QUEUED
from trainer.models import FineTuneRun, RunStatus
from trainer.services.run_progress import RunProgress
from trainer.services.run_queue import NOT_QUEUED as NOT_QUEUED_ERROR
from trainer.services.run_queue import (
    ORPHANED_TASK,
    RunOrphaned,
    run_submit,
    run_submit_resume,
    runs_check_orphans,
)
from trainer.services.run_training import NOT_QUEUED
from trainer.services.runs import ORPHANED, RunError, RunSpec, run_request_cancel
from trainer.tasks import RUN_FAILED, RunFailed, finetune


@pytest.fixture
def tiny_model(tiny_model_dir):
    return str(tiny_model_dir)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from trainer.engine.toy import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama-tasks"))


@pytest.mark.django_db
def test_the_finetune_task_trains_the_run_to_success(tiny_model):
    run = run_submit(spec=colour_spec(tiny_model))
    # The immediate backend ran the task inside run_submit.
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.step == run.total_steps == 4
    assert run.adapter_size_bytes and os.path.isdir(run.adapter_path)
    assert run.metrics.filter(kind="train").count() == 4


@pytest.mark.django_db
def test_a_run_cancelled_while_queued_is_skipped_not_trained(tiny_model):
    with override_settings(TASKS=DATABASE_TASKS):
        run = run_submit(spec=colour_spec(tiny_model))
    run_request_cancel(run=run)
    result = finetune.call(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.step == 0 and not run.adapter_path
    assert result["skipped"] == NOT_QUEUED.format(id=run.pk, status=RunStatus.CANCELLED)


@pytest.mark.django_db
def test_a_worker_taking_a_task_marks_runs_of_dead_workers_interrupted(tiny_model):
    orphan = FineTuneRunFactory(
        status=RunStatus.RUNNING, worker=f"{socket.gethostname()}:{dead_pid()}"
    )
    run_submit(spec=colour_spec(tiny_model))
    orphan.refresh_from_db()
    assert orphan.status == RunStatus.INTERRUPTED
    assert orphan.error.startswith(ORPHANED.split("{")[0])


@pytest.mark.django_db
@override_settings(TASKS=DATABASE_TASKS)
def test_run_submit_stores_the_run_and_its_gpu_task_together(tiny_model):
    run = run_submit(spec=colour_spec(tiny_model))
    task = DBTaskResult.objects.get()
    assert run.status == RunStatus.QUEUED
    assert task.task_path == "trainer.tasks.finetune"
    assert task.queue_name == "gpu" and task.status == "READY"
    assert task.args_kwargs == {"args": [], "kwargs": {"run_id": run.pk}}


@pytest.mark.django_db
@override_settings(TASKS=DATABASE_TASKS)
def test_a_refused_run_queues_nothing(tiny_model):
    dataset = colour_dataset(lint_errors=2, lint_report=[{"severity": "error", "code": "x"}])
    with pytest.raises(RunError):
        run_submit(spec=RunSpec(dataset=dataset, config=small_config(), base_model=tiny_model))
    assert not FineTuneRun.objects.exists()
    assert not DBTaskResult.objects.exists()


@pytest.mark.django_db
@override_settings(TASKS=DATABASE_TASKS)
def test_resuming_without_a_checkpoint_queues_nothing():
    stopped = FineTuneRunFactory(status=RunStatus.INTERRUPTED)
    with pytest.raises(RunError):
        run_submit_resume(run=stopped)
    assert FineTuneRun.objects.count() == 1
    assert not DBTaskResult.objects.exists()


@pytest.mark.django_db
@override_settings(TASKS=DATABASE_TASKS)
def test_an_orphaned_run_fails_its_running_task(tiny_model):
    run = run_submit(spec=colour_spec(tiny_model))
    worker = f"{socket.gethostname()}:{dead_pid()}"
    FineTuneRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, worker=worker)
    DBTaskResult.objects.update(status="RUNNING")
    other = FineTuneRunFactory(status=RunStatus.RUNNING, worker=f"{socket.gethostname()}:1")

    assert [r.pk for r in runs_check_orphans()] == [run.pk]
    task = DBTaskResult.objects.get()
    assert task.status == "FAILED" and task.exception_class_path == ORPHANED_TASK
    run.refresh_from_db()
    assert task.traceback == run.error and run.status == RunStatus.INTERRUPTED
    other.refresh_from_db()
    assert other.status == RunStatus.RUNNING  # pid 1 is alive


@pytest.mark.django_db
@override_settings(TASKS=DATABASE_TASKS)
def test_an_orphaned_tasks_error_names_a_real_exception_class(tiny_model):
    run = run_submit(spec=colour_spec(tiny_model))
    worker = f"{socket.gethostname()}:{dead_pid()}"
    FineTuneRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, worker=worker)
    DBTaskResult.objects.update(status="RUNNING")
    runs_check_orphans()

    [error] = DBTaskResult.objects.get().task_result.errors
    assert error.exception_class is RunOrphaned


@pytest.mark.django_db
def test_checking_for_orphans_writes_nothing_while_nothing_runs(django_assert_num_queries):
    FineTuneRunFactory(status=RunStatus.SUCCEEDED)
    with django_assert_num_queries(1):
        assert runs_check_orphans() == []


@pytest.mark.django_db
@override_settings(TASKS=DATABASE_TASKS)
def test_finetune_enqueue_queues_the_run_instead_of_training_it(tiny_model):
    dataset = colour_dataset()
    out = StringIO()
    call_command(
        "finetune",
        "--dataset",
        dataset.name,
        "--base-model",
        tiny_model,
        "--max-steps",
        "3",
        "--enqueue",
        stdout=out,
    )
    run = FineTuneRun.objects.get()
    task = DBTaskResult.objects.get()
    assert run.status == RunStatus.QUEUED and run.step == 0
    assert run.hyperparameters["max_steps"] == 3
    assert task.args_kwargs["kwargs"] == {"run_id": run.pk} and task.queue_name == "gpu"
    assert QUEUED.format(id=run.pk, task=task.id) in out.getvalue()


@pytest.mark.django_db
@override_settings(TASKS=DATABASE_TASKS)
def test_finetune_enqueue_with_bad_input_queues_nothing():
    with pytest.raises(CommandError) as raised:
        call_command("finetune", "--dataset", "nope", "--enqueue")
    assert raised.value.returncode == 2
    assert not FineTuneRun.objects.exists() and not DBTaskResult.objects.exists()


@pytest.mark.django_db
def test_cancel_from_the_web_stops_the_run_at_a_step_and_keeps_its_checkpoint(
    tiny_model, manager_client, monkeypatch
):
    with override_settings(TASKS=DATABASE_TASKS):
        spec = colour_spec(tiny_model, epochs=5, max_steps=24, eval_every=100, patience=0)
        run = run_submit(spec=spec)
    on_step = RunProgress.on_step

    def press_cancel_at_step_two(self, progress):
        on_step(self, progress)
        if progress.step == 2:  # someone presses the button while the worker trains
            assert manager_client.post(f"/runs/{run.pk}/cancel/").status_code == 302

    monkeypatch.setattr(RunProgress, "on_step", press_cancel_at_step_two)
    # The loop asks the database every CANCEL_POLL_S seconds; a tiny model's 24 steps can all
    # finish inside one interval, so ask at every step here.
    monkeypatch.setattr("trainer.services.run_progress.CANCEL_POLL_S", 0.0)
    finetune.call(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert 2 <= run.step < run.total_steps == 24
    assert read_checkpoint_info(Path(run.checkpoint_path))["loop"]["step"] == run.step
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    assert "status-cancelled" in html and f"Resume from step {run.step}" in html


# A backend without the gpu queue refuses every training task, as a broken queue would.
NO_GPU_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


@pytest.mark.django_db
def test_a_run_that_cannot_be_queued_is_not_stored(tiny_model):
    with override_settings(TASKS=NO_GPU_QUEUE), pytest.raises(InvalidTaskError):
        run_submit(spec=colour_spec(tiny_model))
    assert not FineTuneRun.objects.exists()


@pytest.mark.django_db
def test_a_resumed_run_that_cannot_be_queued_is_marked_failed(tiny_model, monkeypatch):
    spec = colour_spec(tiny_model, epochs=5, max_steps=8, eval_every=2, patience=0)
    with override_settings(TASKS=DATABASE_TASKS):
        first = run_submit(spec=spec)
    on_step = RunProgress.on_step

    def stop_at_step_four(self, progress):
        on_step(self, progress)
        if progress.step == 4:
            self.stop.request(RunStatus.INTERRUPTED)

    monkeypatch.setattr(RunProgress, "on_step", stop_at_step_four)
    finetune.call(run_id=first.pk)
    first.refresh_from_db()
    assert first.status == RunStatus.INTERRUPTED and first.checkpoint_path

    with override_settings(TASKS=NO_GPU_QUEUE), pytest.raises(InvalidTaskError) as raised:
        run_submit_resume(run=first)
    resumed = FineTuneRun.objects.get(resumed_from=first)
    assert resumed.status == RunStatus.FAILED
    assert resumed.error == NOT_QUEUED_ERROR.format(error=raised.value)


@pytest.mark.django_db
def test_a_run_that_fails_fails_its_task_with_the_runs_error(tiny_model, tmp_path):
    # The model was there when the run was queued and is gone when a worker takes it, as an
    # unreachable hub id is.
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    with override_settings(TASKS=DATABASE_TASKS):
        run = run_submit(spec=colour_spec(model))
    shutil.rmtree(model)
    with pytest.raises(RunFailed) as raised:
        finetune.call(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.error
    assert str(raised.value) == RUN_FAILED.format(id=run.pk, error=run.error)
