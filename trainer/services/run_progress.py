"""The engine's hooks for a run: progress, loss-curve points and heartbeats go to the database
as they happen, and a cancel request (from the database or a signal) reaches the loop."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.utils import timezone

from trainer.engine.hooks import Evaluation, Progress, StartInfo, TrainHooks
from trainer.models import FineTuneRun, MetricKind, RunMetric, RunStatus

# Heartbeats also come after every micro-batch, but at most this often (one UPDATE each).
HEARTBEAT_EVERY_S = 10.0
# How often the loop asks the database whether someone pressed "cancel".
CANCEL_POLL_S = 2.0

# What a stop signal makes of the run. SIGTERM always means "this process is being shut down":
# the run is interrupted, to be resumed later. SIGINT depends on who receives it. In a command
# trained in the foreground it is the person who started the run pressing Ctrl-C: a decision
# about this run, so it is cancelled (exit 130). A worker gets SIGINT when the worker itself is
# being stopped (db_worker treats it like SIGTERM; Ctrl-C in its terminal stops the worker, not
# a run someone chose), and the demo wants its next start to resume: so there it interrupts.
CTRL_C_CANCELS = {signal.SIGINT: RunStatus.CANCELLED, signal.SIGTERM: RunStatus.INTERRUPTED}
CTRL_C_INTERRUPTS = {signal.SIGINT: RunStatus.INTERRUPTED, signal.SIGTERM: RunStatus.INTERRUPTED}


class StopRequest:
    """A stop asked from outside the training loop: a signal handler or the caller's thread.

    ``status`` is what the run becomes: cancelled (a person asked) or interrupted (the process
    is being shut down and the run should be resumed later).
    """

    def __init__(self) -> None:
        self.status: str | None = None

    def request(self, status: str) -> None:
        self.status = self.status or status

    @property
    def requested(self) -> bool:
        return self.status is not None


@contextmanager
def stop_on_signals(stop: StopRequest, meanings: Mapping[int, str]) -> Iterator[None]:
    """While a run trains, the first SIGINT or SIGTERM asks it to stop at the next step with a
    checkpoint, becoming what ``meanings`` says (``CTRL_C_CANCELS``, ``CTRL_C_INTERRUPTS``); a
    second one stops it at once (KeyboardInterrupt). The handler that was there before still
    hears the first signal: a worker's own marks the worker as shutting down, so it exits after
    this task. Outside the main thread (the immediate backend in a web request) signals are
    left alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in meanings}

    def handler(signum: int, frame: Any) -> None:
        if stop.requested:
            raise KeyboardInterrupt
        stop.request(meanings[signum])
        chained = previous[signum]
        if callable(chained) and chained is not signal.default_int_handler:
            chained(signum, frame)

    for sig in meanings:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class RunProgress(TrainHooks):
    """Writes what the engine reports to the run, as it happens (main process only)."""

    def __init__(self, run: FineTuneRun, stop: StopRequest) -> None:
        self.run = run
        self.stop = stop
        self.last_heartbeat = 0.0
        self.last_cancel_poll = 0.0

    def _update(self, **fields: Any) -> None:
        fields["heartbeat_at"] = timezone.now()
        self.last_heartbeat = time.monotonic()
        FineTuneRun.objects.filter(pk=self.run.pk).update(**fields)
        for key, value in fields.items():
            setattr(self.run, key, value)

    def on_start(self, info: StartInfo) -> None:
        plan = {
            "total_steps": info.total_steps,
            "steps_per_epoch": info.steps_per_epoch,
            "eval_every": info.eval_every,
            "start_step": info.start_step,
            "train_examples": info.train_examples,
            "validation_examples": info.validation_examples,
            "truncated_examples": info.truncated_examples,
            "dropped_examples": info.dropped_examples,
            "padding_share": round(info.padding_share, 4),
            "packing": info.packing,
        }
        self._update(
            total_steps=info.total_steps,
            step=info.start_step,
            trainable_params=info.trainable_params,
            total_params=info.total_params,
            environment=info.environment,
            plan=plan,
        )

    def on_step(self, progress: Progress) -> None:
        RunMetric.objects.create(
            run=self.run,
            kind=MetricKind.TRAIN,
            step=progress.step,
            epoch=progress.epoch,
            loss=progress.train_loss,
            learning_rate=progress.learning_rate,
            grad_norm=progress.grad_norm,
            tokens_per_s=progress.tokens_per_s,
            reward_accuracy=progress.reward_accuracy,
            reward_margin=progress.reward_margin,
        )
        self._update(step=progress.step, epoch=progress.epoch, eta_seconds=progress.eta_seconds)

    def on_evaluate(self, evaluation: Evaluation) -> None:
        RunMetric.objects.create(
            run=self.run,
            kind=MetricKind.VALIDATION,
            step=evaluation.step,
            epoch=evaluation.epoch,
            loss=evaluation.val_loss,
            reward_accuracy=evaluation.reward_accuracy,
            reward_margin=evaluation.reward_margin,
        )
        self._update(best_val_loss=evaluation.best_val_loss, best_step=evaluation.best_step)

    def on_checkpoint(self, path: Path, step: int) -> None:
        self._update(checkpoint_path=str(path))

    def on_heartbeat(self) -> None:
        if time.monotonic() - self.last_heartbeat >= HEARTBEAT_EVERY_S:
            self._update()

    def should_stop(self) -> bool:
        if self.stop.requested:
            return True
        if time.monotonic() - self.last_cancel_poll >= CANCEL_POLL_S:
            self.last_cancel_poll = time.monotonic()
            if FineTuneRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists():
                self.stop.request(RunStatus.CANCELLED)
        return self.stop.requested


class SilentRankHooks(TrainHooks):
    """The hooks of the other ranks of a multi-process run: only the main rank writes to the
    database; these only pass the stop request on to their loop."""

    def __init__(self, stop: StopRequest) -> None:
        self.stop = stop

    def should_stop(self) -> bool:
        return self.stop.requested
