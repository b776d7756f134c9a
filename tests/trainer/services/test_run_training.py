"""Training a run through the service: progress and loss-curve points written while it trains,
a cancel request, failures, and a run that is not queued any more."""

import os
from pathlib import Path

import pytest

from tests.factories import FineTuneRunFactory
from tests.trainer.run_fixtures import queued_run, small_config
from trainer.models import FineTuneRun, MetricKind, RunMetric, RunStatus
from trainer.services import run_progress
from trainer.services.run_progress import RunProgress
from trainer.services.run_training import NOT_QUEUED, run_execute
from trainer.services.runs import RunError, run_request_cancel

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("runs_dir")]


def test_a_run_succeeds_writing_progress_and_curves_while_it_trains(
    model_dir, runs_dir, monkeypatch
):
    run = queued_run(model_dir, max_steps=6, eval_every=2)
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
    # What the run page plots under the loss: the learning rate and gradient norm of each step.
    assert all(m.grad_norm > 0 and m.tokens_per_s > 0 for m in train)
    assert [m.learning_rate > 0 for m in train] == [False] + [True] * 5  # warmup starts at 0
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
    assert run.hyperparameters == small_config(max_steps=6, eval_every=2).as_dict()
    assert run.plan["total_steps"] == 6 and run.plan["start_step"] == 0
    assert run.plan["packing"] == "off"  # auto: a CPU has no variable-length attention
    assert run.peak_memory_bytes > 0 and run.wall_seconds > 0 and run.eta_seconds == 0


def test_a_cancel_request_stops_the_run_at_the_next_step_keeping_a_checkpoint(
    model_dir, monkeypatch
):
    monkeypatch.setattr(run_progress, "CANCEL_POLL_S", 0.0)
    run = queued_run(model_dir, max_steps=6, eval_every=4)
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


def test_a_run_that_is_no_longer_queued_is_not_trained():
    cancelled = FineTuneRunFactory(status=RunStatus.CANCELLED)
    with pytest.raises(RunError) as error:
        run_execute(run=cancelled)
    assert str(error.value) == NOT_QUEUED.format(id=cancelled.pk, status="cancelled")


def test_out_of_memory_fails_the_run_with_what_to_lower(model_dir, monkeypatch):
    import torch

    def exhausted(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr("trainer.engine.steps.assistant_loss", exhausted)
    run = run_execute(run=queued_run(model_dir))
    assert run.status == RunStatus.FAILED and run.finished_at is not None
    assert "lower --batch-size" in run.error and "--max-seq-len" in run.error


def test_a_crash_fails_the_run_with_its_traceback_and_is_raised_again(model_dir, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("trainer.engine.steps.assistant_loss", broken)
    run = queued_run(model_dir)
    with pytest.raises(ZeroDivisionError):
        run_execute(run=run)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "Traceback" in run.error and "ZeroDivisionError: a bug" in run.error
