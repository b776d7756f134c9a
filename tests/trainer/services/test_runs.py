"""Run records through the service: refusals before any run exists, cancel, orphans, resume and
retry. Training itself: test_run_training.py."""

import json
import os
import socket
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.factories import BaseModelFactory, DatasetFactory, FineTuneRunFactory
from tests.trainer.run_fixtures import colour_dataset, colour_spec, queued_run, small_config
from trainer.engine.model_store import NO_WEIGHTS
from trainer.engine.toy import build_tiny_model
from trainer.models import FineTuneRun, MetricKind, RunMetric, RunStatus
from trainer.services import run_progress
from trainer.services.run_progress import RunProgress
from trainer.services.run_training import run_execute
from trainer.services.runs import (
    DATASET_HAS_ERRORS,
    NO_CHECKPOINT,
    NO_TRAINING_EXAMPLES,
    NOT_RESUMABLE,
    NOT_RETRYABLE,
    RETRY_DATASET_CHANGED,
    RunError,
    RunSpec,
    run_create,
    run_create_resume,
    run_mark_orphans,
    run_request_cancel,
    run_retry_spec,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("runs_dir")]


def test_a_dataset_with_lint_errors_is_refused_with_its_summary_unless_forced(model_dir):
    report = [
        {"code": "empty-turn", "severity": "error", "message": "empty turn", "lines": [3, 9]},
        {"code": "near-duplicate", "severity": "warning", "message": "dup", "lines": [4]},
    ]
    dataset = colour_dataset(lint_report=report, lint_errors=1, lint_warnings=1)
    with pytest.raises(RunError) as error:
        run_create(spec=RunSpec(dataset=dataset, config=small_config(), base_model=str(model_dir)))
    summary = "  empty-turn (lines 3, 9): empty turn"
    assert str(error.value) == DATASET_HAS_ERRORS.format(
        name=dataset.name, errors=1, warnings=1, summary=summary
    )
    assert not FineTuneRun.objects.exists()
    spec = RunSpec(dataset=dataset, config=small_config(), base_model=str(model_dir), force=True)
    forced = run_create(spec=spec)
    assert forced.status == RunStatus.QUEUED and forced.dataset_hash == dataset.content_hash


def test_unusable_base_models_and_empty_datasets_are_refused_before_a_run_exists(tmp_path):
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(RunError) as error:
        run_create(spec=colour_spec(empty_dir))
    assert str(error.value) == NO_WEIGHTS.format(path=empty_dir)
    with pytest.raises(RunError, match="neither a packaged model"):
        run_create(spec=colour_spec("no-such-model"))
    dataset = DatasetFactory()
    with pytest.raises(RunError) as error:
        run_create(spec=RunSpec(dataset=dataset, config=small_config(), base_model="smollm2-135m"))
    assert str(error.value) == NO_TRAINING_EXAMPLES.format(name=dataset.name)
    assert not FineTuneRun.objects.exists()


def test_cancelling_a_queued_run_cancels_it_at_once_and_a_finished_run_is_left_alone():
    queued = FineTuneRunFactory()
    assert run_request_cancel(run=queued).status == RunStatus.CANCELLED
    done = FineTuneRunFactory(status=RunStatus.SUCCEEDED)
    assert run_request_cancel(run=done).status == RunStatus.SUCCEEDED


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
    run = queued_run(model_dir, max_steps=6, eval_every=3)
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


def test_resuming_copies_every_field_of_the_curve_up_to_the_checkpoint(tmp_path):
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    state = {"loop": {"step": 2}, "config": {}, "base_fingerprint": {}}
    (checkpoint / "state.json").write_text(json.dumps(state))
    dataset = DatasetFactory()
    stopped = FineTuneRunFactory(
        status=RunStatus.INTERRUPTED,
        dataset=dataset,
        dataset_hash=dataset.content_hash,
        checkpoint_path=str(checkpoint),
        base_model=BaseModelFactory(name="local", source=str(tmp_path / "model")),
    )
    for step in (1, 2, 3):
        RunMetric.objects.create(
            run=stopped,
            kind=MetricKind.TRAIN,
            step=step,
            epoch=step / 4,
            loss=3.0 - step,
            learning_rate=0.01 * step,
            grad_norm=1.5 * step,
            tokens_per_s=100.0 * step,
            reward_accuracy=0.25 * step,
            reward_margin=0.5 * step,
        )
    RunMetric.objects.create(run=stopped, kind=MetricKind.VALIDATION, step=2, epoch=0.5, loss=1.25)

    resumed = run_create_resume(run=stopped)
    # Every field a point stores, so one added to RunMetric later is checked too.
    fields = [f.attname for f in RunMetric._meta.concrete_fields]
    fields = [f for f in fields if f not in ("id", "run_id", "created_at")]
    copied = list(resumed.metrics.order_by("kind", "step").values(*fields))
    kept = stopped.metrics.filter(step__lte=2).order_by("kind", "step")
    assert copied == list(kept.values(*fields))
    assert copied[0] == {
        "kind": "train",
        "step": 1,
        "epoch": 0.25,
        "loss": 2.0,
        "learning_rate": 0.01,
        "grad_norm": 1.5,
        "tokens_per_s": 100.0,
        "reward_accuracy": 0.25,
        "reward_margin": 0.5,
    }


# --- retry ---------------------------------------------------------------------------------------


def stopped_run(status=RunStatus.FAILED, **fields):
    dataset = colour_dataset()
    config = small_config(rank=8)
    fields = {"name": "kitchen", "step": 3, "total_steps": 4, **fields}
    return FineTuneRunFactory(
        dataset=dataset,
        dataset_hash=dataset.content_hash,
        hyperparameters=config.as_dict(),
        status=status,
        **fields,
    )


@pytest.mark.parametrize("status", [RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.INTERRUPTED])
def test_a_retry_starts_a_stopped_run_again_from_step_zero_with_its_settings(status):
    run = stopped_run(status, checkpoint_path="/x/checkpoint")
    RunMetric.objects.create(run=run, kind=MetricKind.TRAIN, step=1, loss=2.0)
    retry = run_create(spec=run_retry_spec(run=run))
    assert (retry.status, retry.step, retry.checkpoint_path) == (RunStatus.QUEUED, 0, "")
    assert (retry.retry_of, retry.resumed_from) == (run, None)
    assert (retry.dataset, retry.base_model) == (run.dataset, run.base_model)
    assert retry.hyperparameters == small_config(rank=8).as_dict()
    assert retry.name == "kitchen-retry" and not retry.metrics.exists()


def test_each_retry_gets_a_name_no_run_has():
    run = stopped_run()
    FineTuneRunFactory(name="kitchen-retry-2")  # taken by hand
    names = []
    for _ in range(3):
        retry = run_create(spec=run_retry_spec(run=run))
        names.append(retry.name)
    # A retry of a retry is named from the first run's name, not "kitchen-retry-retry".
    retry.status = RunStatus.FAILED
    retry.save()
    again = run_create(spec=run_retry_spec(run=retry))
    assert names == ["kitchen-retry", "kitchen-retry-3", "kitchen-retry-4"]
    assert again.name == "kitchen-retry-5" and again.retry_of == retry


def test_a_retry_keeps_the_force_of_its_run_but_not_across_changed_data():
    run = stopped_run(name="forced")
    run.dataset.lint_errors = 2
    run.dataset.save()
    assert run_create(spec=run_retry_spec(run=run)).name == "forced-retry"  # same data: forced
    run.dataset.content_hash = "changed"
    run.dataset.save()
    with pytest.raises(RunError) as error:
        run_retry_spec(run=run)
    assert str(error.value) == RETRY_DATASET_CHANGED.format(name=run.dataset.name, id=run.pk)


@pytest.mark.parametrize("status", [RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.SUCCEEDED])
def test_a_retry_is_refused_for_a_run_that_has_not_stopped_early(status):
    run = stopped_run(status)
    with pytest.raises(RunError) as error:
        run_retry_spec(run=run)
    assert str(error.value) == NOT_RETRYABLE.format(id=run.pk, status=status)
    assert FineTuneRun.objects.count() == 1
