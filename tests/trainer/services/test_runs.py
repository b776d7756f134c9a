"""Runs through the service: refusals before any run exists, status transitions, progress and
loss-curve points written while training, cancel, failure, orphans and resume."""

import json
import os
import socket
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.factories import BaseModelFactory, DatasetFactory, FineTuneRunFactory
from tests.trainer.run_fixtures import colour_dataset, small_config
from trainer.engine.model_store import NO_WEIGHTS
from trainer.engine.toy import build_tiny_model
from trainer.models import FineTuneRun, MetricKind, RunMetric, RunStatus
from trainer.services import run_progress
from trainer.services.run_progress import RunProgress
from trainer.services.runs import (
    DATASET_HAS_ERRORS,
    NO_CHECKPOINT,
    NO_TRAINING_EXAMPLES,
    NOT_QUEUED,
    NOT_RESUMABLE,
    RunError,
    run_create,
    run_create_resume,
    run_execute,
    run_mark_orphans,
    run_request_cancel,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(autouse=True)
def runs_dir(settings, tmp_path):
    settings.EVALHUB_RUNS_DIR = tmp_path / "runs"
    settings.EVALHUB_MODEL_CACHE = tmp_path / "models"
    return settings.EVALHUB_RUNS_DIR


def create(model_dir, **config):
    return run_create(
        dataset=colour_dataset(), config=small_config(**config), base_model=str(model_dir)
    )


def test_a_dataset_with_lint_errors_is_refused_with_its_summary_unless_forced(model_dir):
    report = [
        {"code": "empty-turn", "severity": "error", "message": "empty turn", "lines": [3, 9]},
        {"code": "near-duplicate", "severity": "warning", "message": "dup", "lines": [4]},
    ]
    dataset = colour_dataset(lint_report=report, lint_errors=1, lint_warnings=1)
    with pytest.raises(RunError) as error:
        run_create(dataset=dataset, config=small_config(), base_model=str(model_dir))
    summary = "  empty-turn (lines 3, 9): empty turn"
    assert str(error.value) == DATASET_HAS_ERRORS.format(
        name=dataset.name, errors=1, warnings=1, summary=summary
    )
    assert not FineTuneRun.objects.exists()
    forced = run_create(
        dataset=dataset, config=small_config(), base_model=str(model_dir), force=True
    )
    assert forced.status == RunStatus.QUEUED and forced.dataset_hash == dataset.content_hash


def test_unusable_base_models_and_empty_datasets_are_refused_before_a_run_exists(tmp_path):
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(RunError) as error:
        run_create(dataset=colour_dataset(), config=small_config(), base_model=str(empty_dir))
    assert str(error.value) == NO_WEIGHTS.format(path=empty_dir)
    with pytest.raises(RunError, match="neither a packaged model"):
        run_create(dataset=colour_dataset(), config=small_config(), base_model="no-such-model")
    dataset = DatasetFactory()
    with pytest.raises(RunError) as error:
        run_create(dataset=dataset, config=small_config(), base_model="smollm2-135m")
    assert str(error.value) == NO_TRAINING_EXAMPLES.format(name=dataset.name)
    assert not FineTuneRun.objects.exists()


def test_a_run_succeeds_writing_progress_and_curves_while_it_trains(
    model_dir, runs_dir, monkeypatch
):
    run = create(model_dir, max_steps=6, eval_every=2)
    seen = []
    original = RunProgress.on_evaluate

    def snapshot(self, evaluation):
        original(self, evaluation)
        row = FineTuneRun.objects.get(pk=run.pk)
        points = RunMetric.objects.filter(run=run)
        seen.append(
            (
                row.status,
                row.step,
                points.filter(kind=MetricKind.TRAIN).count(),
                points.filter(kind=MetricKind.VALIDATION).count(),
                row.heartbeat_at is not None,
            )
        )

    monkeypatch.setattr(RunProgress, "on_evaluate", snapshot)
    run = run_execute(run=run)

    assert seen[:2] == [("running", 2, 2, 1, True), ("running", 4, 4, 2, True)]
    assert run.status == RunStatus.SUCCEEDED and run.error == ""
    assert run.started_at <= run.finished_at and run.worker.endswith(f":{os.getpid()}")
    train = list(run.metrics.filter(kind=MetricKind.TRAIN).order_by("step"))
    validation = list(run.metrics.filter(kind=MetricKind.VALIDATION).order_by("step"))
    assert [m.step for m in train] == [1, 2, 3, 4, 5, 6]
    assert all(m.learning_rate is not None and m.tokens_per_s > 0 for m in train)
    assert [m.step for m in validation] == [2, 4, 5, 6]  # every 2 steps and the epoch end
    best = min(validation, key=lambda m: m.loss)
    assert (run.best_val_loss, run.best_step) == (pytest.approx(best.loss), best.step)
    adapter = Path(run.adapter_path)
    assert adapter == runs_dir / f"run-{run.pk}" / "adapter"
    files = [adapter / name for name in os.listdir(adapter)]
    assert run.adapter_size_bytes == sum(os.path.getsize(f) for f in files)
    assert Path(run.checkpoint_path) == runs_dir / f"run-{run.pk}" / "checkpoint"
    assert run.trainable_params == 8192 and 0 < run.trainable_share < 1
    assert run.environment["device"] == "cpu" and "torch" in run.environment["versions"]
    assert run.hyperparameters["rank"] == 4 and run.hyperparameters["plan"]["total_steps"] == 6
    assert run.peak_memory_bytes > 0 and run.wall_seconds > 0 and run.eta_seconds == 0


def test_a_cancel_request_stops_the_run_at_the_next_step_keeping_a_checkpoint(
    model_dir, monkeypatch
):
    monkeypatch.setattr(run_progress, "CANCEL_POLL_S", 0.0)
    run = create(model_dir, max_steps=6, eval_every=4)
    original = RunProgress.on_step

    def cancel_after_two(self, progress):
        original(self, progress)
        if progress.step == 2:
            run_request_cancel(run=FineTuneRun.objects.get(pk=run.pk))

    monkeypatch.setattr(RunProgress, "on_step", cancel_after_two)
    run = run_execute(run=run)
    assert (run.status, run.step) == (RunStatus.CANCELLED, 2)
    assert run.cancel_requested and run.adapter_path == ""
    assert (Path(run.checkpoint_path) / "state.json").is_file()
    assert run.metrics.filter(kind=MetricKind.TRAIN).count() == 2


def test_cancelling_a_queued_run_cancels_it_at_once_and_a_finished_run_is_left_alone():
    queued = FineTuneRunFactory()
    assert run_request_cancel(run=queued).status == RunStatus.CANCELLED
    done = FineTuneRunFactory(status=RunStatus.SUCCEEDED)
    assert run_request_cancel(run=done).status == RunStatus.SUCCEEDED
    with pytest.raises(RunError) as error:
        run_execute(run=queued)
    assert str(error.value) == NOT_QUEUED.format(id=queued.pk, status="cancelled")


def test_out_of_memory_fails_the_run_with_what_to_lower(model_dir, monkeypatch):
    import torch

    def exhausted(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr("trainer.engine.steps.assistant_loss", exhausted)
    run = run_execute(run=create(model_dir))
    assert run.status == RunStatus.FAILED and run.finished_at is not None
    assert "lower --batch-size" in run.error and "--max-seq-len" in run.error


def test_a_crash_fails_the_run_with_its_traceback_and_is_raised_again(model_dir, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("trainer.engine.steps.assistant_loss", broken)
    run = create(model_dir)
    with pytest.raises(ZeroDivisionError):
        run_execute(run=run)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "Traceback" in run.error and "ZeroDivisionError: a bug" in run.error


def test_runs_whose_worker_stopped_reporting_are_marked_interrupted():
    now = timezone.now()
    here = socket.gethostname()
    stale = FineTuneRunFactory(
        status=RunStatus.RUNNING, heartbeat_at=now - timedelta(hours=1), worker="gpu-7:1"
    )
    fresh = FineTuneRunFactory(status=RunStatus.RUNNING, heartbeat_at=now, worker="gpu-7:2")
    alive = FineTuneRunFactory(
        status=RunStatus.RUNNING, heartbeat_at=now, worker=f"{here}:{os.getpid()}"
    )
    # A pid above the kernel's limit (4194304) can belong to no live process.
    dead = FineTuneRunFactory(status=RunStatus.RUNNING, heartbeat_at=now, worker=f"{here}:9999999")
    orphans = run_mark_orphans(stale_after=timedelta(minutes=15), now=now)
    assert {run.pk for run in orphans} == {stale.pk, dead.pk}
    for run, status in ((stale, "interrupted"), (fresh, "running"), (alive, "running")):
        run.refresh_from_db()
        assert run.status == status
    dead.refresh_from_db()
    assert dead.status == "interrupted" and f"--resume {dead.pk}" in dead.error


def test_a_stopped_run_resumes_from_its_checkpoint_with_its_curve(model_dir, monkeypatch):
    monkeypatch.setattr(run_progress, "CANCEL_POLL_S", 0.0)
    run = create(model_dir, max_steps=6, eval_every=3)
    original = RunProgress.on_step

    def cancel_at_four(self, progress):
        original(self, progress)
        if progress.step == 4:
            run_request_cancel(run=FineTuneRun.objects.get(pk=run.pk))

    monkeypatch.setattr(RunProgress, "on_step", cancel_at_four)
    stopped = run_execute(run=run)
    monkeypatch.setattr(RunProgress, "on_step", original)
    assert (stopped.status, stopped.step) == (RunStatus.CANCELLED, 4)

    resumed = run_create_resume(run=stopped)
    assert (resumed.status, resumed.resumed_from, resumed.step) == ("queued", stopped, 4)
    assert resumed.checkpoint_path == stopped.checkpoint_path
    assert list(resumed.metrics.values_list("kind", "step")) == list(
        stopped.metrics.values_list("kind", "step")
    )
    resumed = run_execute(run=resumed)
    assert (resumed.status, resumed.step, resumed.total_steps) == ("succeeded", 6, 6)
    assert [m.step for m in resumed.metrics.filter(kind=MetricKind.TRAIN)] == [1, 2, 3, 4, 5, 6]
    assert Path(resumed.checkpoint_path).parent.name == f"run-{resumed.pk}"
    assert Path(resumed.adapter_path).is_dir()


def test_resume_is_refused_for_running_runs_runs_without_checkpoint_and_other_bases(
    model_dir, tmp_path
):
    running = FineTuneRunFactory(status=RunStatus.RUNNING)
    with pytest.raises(RunError) as error:
        run_create_resume(run=running)
    assert str(error.value) == NOT_RESUMABLE.format(id=running.pk, status="running")
    early = FineTuneRunFactory(status=RunStatus.INTERRUPTED)
    with pytest.raises(RunError) as error:
        run_create_resume(run=early)
    assert str(error.value) == NO_CHECKPOINT.format(id=early.pk)

    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    fingerprint = {"model_type": "llama", "vocab_size": 42, "hidden_size": 64}
    state = {"loop": {"step": 2}, "config": {}, "base_fingerprint": fingerprint}
    (checkpoint / "state.json").write_text(json.dumps(state))
    other = build_tiny_model(tmp_path / "other", vocab_size=64)
    dataset = DatasetFactory()
    interrupted = FineTuneRunFactory(
        status=RunStatus.INTERRUPTED,
        dataset=dataset,
        dataset_hash=dataset.content_hash,
        checkpoint_path=str(checkpoint),
        base_model=BaseModelFactory(name=str(model_dir), source=str(model_dir)),
    )
    with pytest.raises(RunError, match=r"another base model.*vocab_size 42 ≠ 64"):
        run_create_resume(run=interrupted, base_model=str(other))
