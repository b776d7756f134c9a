"""Training a queued run: drive the QLoRA engine and write what happens to the run.

``run_execute`` claims the run, trains it through ``engine.loop.train`` with ``RunProgress`` as
the engine's hooks (progress, loss-curve points, heartbeats and cancel requests as they happen),
and records the outcome. The records themselves (create, resume, cancel, orphans) are
``trainer.services.runs``.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from trainer.engine.checkpoint import directory_size
from trainer.engine.config import ConfigError
from trainer.engine.data import DataError, PreferencePair
from trainer.engine.hooks import TrainHooks, TrainingError
from trainer.engine.model_store import ModelNotFound, resolve_model_dir
from trainer.models import BaseModel, Dataset, FineTuneRun, RunStatus, Split, TrainMethod
from trainer.services.run_progress import RunProgress, SilentRankHooks, StopRequest
from trainer.services.runs import RunError, run_config
from trainer.services.workers import worker_id

NOT_QUEUED = "run {id} is {status}, not queued: a run is executed once"
STOPPED_AT_ONCE = "stopped at once by a second interrupt; the last checkpoint is kept"
UNEXPECTED = "training crashed:\n{trace}"

# Failures with a message the user can act on; OSError covers an unreachable hub id.
KNOWN_FAILURES = (TrainingError, DataError, ConfigError, ModelNotFound, OSError)


def run_execute(
    *, run: FineTuneRun, stop: StopRequest | None = None, show_progress: bool = False
) -> FineTuneRun:
    """Train the run's adapter and return the run in its final state.

    Deliberately not one transaction: every write commits at once, so the run page and other
    workers see progress as it happens. Known failures (out of memory, unusable data, model or
    checkpoint) are recorded as "failed" and returned; anything unexpected is recorded with its
    traceback and raised again. Under several processes only the main one writes.
    """
    from trainer.engine.distributed import dist_context
    from trainer.engine.loop import train

    stop = stop or StopRequest()
    context = dist_context()
    if context.is_main:
        _start(run)
    hooks: TrainHooks = RunProgress(run, stop) if context.is_main else SilentRankHooks(stop)
    resume_from = Path(run.checkpoint_path) if run.checkpoint_path else None
    started = time.monotonic()
    try:
        model_dir = _resolve_model(run, context)
        config = run_config(run)
        examples = _pairs if config.method == TrainMethod.DPO else _conversations
        result = train(
            model_dir=model_dir,
            config=config,
            train_conversations=examples(run.dataset, Split.TRAIN),
            validation_conversations=examples(run.dataset, Split.VALIDATION),
            output_dir=run_output_dir(run),
            hooks=hooks,
            resume_from=resume_from,
            adapter_metadata=_adapter_metadata(run),
            show_progress=show_progress,
            start_adapter=Path(run.from_run.adapter_path) if run.from_run else None,
        )
    except KNOWN_FAILURES as error:
        if context.is_main:
            _end(run, RunStatus.FAILED, started, error=str(error))
        return run
    except KeyboardInterrupt:
        if context.is_main:
            status = stop.status or RunStatus.CANCELLED
            _end(run, status, started, error=STOPPED_AT_ONCE)
        raise
    except Exception:
        if context.is_main:
            _end(
                run,
                RunStatus.FAILED,
                started,
                error=UNEXPECTED.format(trace=traceback.format_exc()),
            )
        raise
    if context.is_main:
        _finish(run, result, stop)
    return run


@transaction.atomic
def _start(run: FineTuneRun) -> None:
    locked = FineTuneRun.objects.select_for_update().get(pk=run.pk)
    if locked.status != RunStatus.QUEUED:
        raise RunError(NOT_QUEUED.format(id=run.pk, status=locked.status))
    now = timezone.now()
    fields = {
        "status": RunStatus.RUNNING,
        "started_at": now,
        "heartbeat_at": now,
        "worker": worker_id(),
        "error": "",
    }
    FineTuneRun.objects.filter(pk=run.pk).update(**fields)
    run.refresh_from_db()


def _resolve_model(run: FineTuneRun, context: Any) -> Path | str:
    """The weights directory; the main process converts a packaged model first, alone."""
    source = run.base_model.source
    if context.is_main:
        model_dir = resolve_model_dir(source, settings.EVALHUB_MODEL_CACHE)
        if isinstance(model_dir, Path) and run.base_model.local_path != str(model_dir):
            BaseModel.objects.filter(pk=run.base_model.pk).update(local_path=str(model_dir))
    context.barrier()
    return model_dir if context.is_main else resolve_model_dir(source, settings.EVALHUB_MODEL_CACHE)


def _conversations(dataset: Dataset, split: str) -> list[list[dict[str, str]]]:
    """What SFT learns: every conversation of the split; for a preference set, the chosen ones
    (its pairs' and the corrections')."""
    examples = dataset.examples.filter(split=split).order_by("index")
    return list(examples.values_list("messages", flat=True))


def _pairs(dataset: Dataset, split: str) -> list[PreferencePair]:
    """What DPO learns: the split's pairs; the rejected side is the prompt with the rejected
    answer in place of the chosen one. Rows without a rejected answer (corrections) are SFT's."""
    examples = dataset.examples.filter(split=split).exclude(rejected="").order_by("index")
    return [
        PreferencePair(
            chosen=messages,
            rejected=[*messages[:-1], {"role": "assistant", "content": rejected}],
        )
        for messages, rejected in examples.values_list("messages", "rejected")
    ]


def _adapter_metadata(run: FineTuneRun) -> dict[str, Any]:
    return {
        "run_id": run.pk,
        "run_name": run.name,
        "dataset": run.dataset.name,
        "dataset_hash": run.dataset_hash,
        "base_model": run.base_model.source,
        "method": run.method,
        "from_run": run.from_run_id,
    }


def _finish(run: FineTuneRun, result: Any, stop: StopRequest) -> None:
    finished = result.stop_reason in ("completed", "early_stopped")
    status = RunStatus.SUCCEEDED if finished else (stop.status or RunStatus.CANCELLED)
    adapter = Path(result.adapter_dir)
    has_adapter = (adapter / "adapter_model.safetensors").is_file()
    FineTuneRun.objects.filter(pk=run.pk).update(
        status=status,
        finished_at=timezone.now(),
        heartbeat_at=timezone.now(),
        eta_seconds=0 if finished else None,
        step=result.final_step,
        early_stopped=result.early_stopped,
        best_val_loss=result.best_val_loss,
        best_step=result.best_step,
        adapter_path=str(adapter) if has_adapter else "",
        adapter_size_bytes=directory_size(adapter) if has_adapter else None,
        checkpoint_path=str(result.checkpoint_dir or run.checkpoint_path or ""),
        trainable_params=result.trainable_params,
        total_params=result.total_params,
        peak_memory_bytes=result.peak_memory_bytes,
        wall_seconds=result.wall_seconds,
    )
    BaseModel.objects.filter(pk=run.base_model.pk).update(
        parameter_count=result.total_params - result.trainable_params
    )
    run.refresh_from_db()


def _end(run: FineTuneRun, status: str, started: float, *, error: str) -> None:
    """A run that ended without a result: failed, or stopped at once by a second interrupt."""
    FineTuneRun.objects.filter(pk=run.pk).update(
        status=status,
        error=error,
        finished_at=timezone.now(),
        eta_seconds=None,
        wall_seconds=time.monotonic() - started,
    )
    run.refresh_from_db()


def run_output_dir(run: FineTuneRun) -> Path:
    return Path(settings.EVALHUB_RUNS_DIR) / f"run-{run.pk}"
