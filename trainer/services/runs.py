"""Fine-tuning runs as records: the only code that creates, resumes, cancels or closes them.

``run_create`` / ``run_create_resume`` check their input and store a queued run;
``run_retry_spec`` says what a retry of a stopped run trains (``run_create`` stores it);
``run_request_cancel`` asks a running run to stop at its next step; ``run_mark_orphans`` closes
runs whose worker died. Training a queued run is ``run_training.run_execute``. The management
command and the background tasks call these same functions.

Status: queued -> running -> succeeded | failed | cancelled | interrupted. A cancelled or
interrupted run keeps its last checkpoint; ``run_create_resume`` makes a new run from it.
A retry is a new run too: the same settings again from step 0, linked by ``retry_of``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from trainer.engine.checkpoint import ADAPTER_WEIGHTS, check_base_matches, read_checkpoint_info
from trainer.engine.config import ConfigError, TrainConfig
from trainer.engine.model_store import (
    DEFAULT_BASE_MODEL,
    PACKAGED_MODELS,
    ModelNotFound,
    check_model_spec,
    resolve_model_dir,
)
from trainer.engine.modeling import read_fingerprint
from trainer.models import (
    BaseModel,
    Dataset,
    DatasetKind,
    FineTuneRun,
    RunMetric,
    RunStatus,
    Split,
    TrainMethod,
)
from trainer.selectors.datasets import dataset_pair_count
from trainer.services.workers import ORPHAN_AFTER, worker_stopped

DATASET_HAS_ERRORS = (
    "dataset {name!r} has {errors} lint error(s) and {warnings} warning(s); fix them, or pass "
    "--force to train anyway:\n{summary}"
)
NO_TRAINING_EXAMPLES = "dataset {name!r} has no example in its train split"
NOT_RESUMABLE = "run {id} is {status}; only a cancelled, interrupted or failed run can be resumed"
NO_CHECKPOINT = "run {id} has no checkpoint to resume from (it stopped before its first one)"
DATASET_CHANGED = (
    "dataset {name!r} changed since run {id} started (content hash differs); resuming would "
    "train on other data"
)
NOT_RETRYABLE = "run {id} is {status}; only a cancelled, interrupted or failed run can be retried"
RETRY_DATASET_CHANGED = (
    "dataset {name!r} changed since run {id} started (content hash differs); a retry would "
    "train on other data: clone the run to train on the new data"
)
DPO_NEEDS_FROM_RUN = (
    "DPO improves an adapter: give the run to start from (--from-run N), whose adapter is also "
    "the reference"
)
NOT_PREFERENCES = (
    "dataset {name!r} is not a preference set (kind {kind!r}); DPO trains on pairs of chosen "
    "and rejected answers: build a preference set from a feedback study"
)
NO_PAIRS = "preference set {name!r} has no pair (chosen and rejected answer) in its train split"
FROM_RUN_NOT_SUCCEEDED = "run {id} is {status}; only a succeeded run's adapter can be started from"
FROM_RUN_NO_ADAPTER = "run {id} has no adapter on disk ({path}); it cannot be started from"
FROM_RUN_OTHER_BASE = (
    "run {id}'s adapter was trained on base model {base!r}, not {given!r}; a run that starts "
    "from an adapter trains on the same base"
)
SETTINGS_OUTDATED = "run {id}'s settings no longer fit the trainer: {error}"
ORPHANED = (
    "worker {worker} stopped reporting (last heartbeat {heartbeat}); its last checkpoint is "
    "kept: resume with `manage.py finetune --resume {id}`"
)

RESUMABLE = (RunStatus.CANCELLED, RunStatus.INTERRUPTED, RunStatus.FAILED)
# A retry starts over, so it needs no checkpoint: any run that ended without finishing.
RETRYABLE = (RunStatus.CANCELLED, RunStatus.INTERRUPTED, RunStatus.FAILED)
# "kitchen-retry-2" is a retry of "kitchen": a retry of it is named from "kitchen" again.
RETRY_SUFFIX = re.compile(r"-retry(-\d+)?$")
# What a run that starts from another run's adapter takes from it: the adapter's shape.
ADAPTER_SHAPE = ("rank", "alpha", "target_modules")
# What a resumed run copies of each loss-curve point: every stored field but its key, its run
# and its creation time, so a field added to RunMetric is carried over without a change here.
_CURVE_FIELDS = [
    field.attname
    for field in RunMetric._meta.concrete_fields
    if field.name not in ("id", "run", "created_at")
]


class RunError(Exception):
    """The run cannot be created, resumed or started as asked; the message says why."""


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """What a new run is asked to train: what the run form or ``manage.py finetune`` chose.
    An option added here reaches ``run_create`` through every caller on the way."""

    dataset: Dataset
    config: TrainConfig
    base_model: str = DEFAULT_BASE_MODEL  # a packaged name, a local directory or a hub id
    name: str = ""  # empty: dataset, rank and time
    force: bool = False  # train despite lint errors
    retry_of: FineTuneRun | None = None  # the stopped run this one starts again
    # The succeeded run whose adapter this one starts from (for DPO also the reference).
    from_run: FineTuneRun | None = None


def lint_summary(dataset: Dataset, *, limit: int = 10) -> str:
    errors = [i for i in dataset.lint_report if i.get("severity") == "error"]
    lines = []
    for item in errors[:limit]:
        where = ", ".join(str(n) for n in item.get("lines", [])[:5])
        more = "…" if len(item.get("lines", [])) > 5 else ""
        at = f" (lines {where}{more})" if where else ""
        lines.append(f"  {item.get('code', 'error')}{at}: {item.get('message', '')}")
    if len(errors) > limit:
        lines.append(f"  … and {len(errors) - limit} more")
    return "\n".join(lines)


def base_model_for(spec: str) -> BaseModel:
    try:
        local = check_model_spec(spec)
    except ModelNotFound as error:
        raise RunError(str(error)) from error
    name = str(local) if local else spec
    base, _ = BaseModel.objects.get_or_create(
        name=name[:200], defaults={"source": str(local or spec), "local_path": str(local or "")}
    )
    return base


@transaction.atomic
def run_create(*, spec: RunSpec, created_by: AbstractBaseUser | None = None) -> FineTuneRun:
    """A queued run, after refusing a dataset with lint errors (unless ``spec.force``), a
    dataset with nothing to train on, and a base model that cannot be found.

    With ``spec.from_run`` the adapter starts from that run's (a succeeded run with an adapter,
    on the same base) and keeps its shape: rank, alpha and target modules are that run's. DPO
    needs it, and a preference set with pairs to train on."""
    dataset, config = spec.dataset, spec.config
    base = base_model_for(spec.base_model)
    if spec.from_run is not None:
        config = _continued_config(config, spec.from_run, base)
    if config.method == TrainMethod.DPO:
        _check_preferences(dataset, spec.from_run)
    if dataset.lint_errors and not spec.force:
        raise RunError(
            DATASET_HAS_ERRORS.format(
                name=dataset.name,
                errors=dataset.lint_errors,
                warnings=dataset.lint_warnings,
                summary=lint_summary(dataset),
            )
        )
    if not dataset.examples.filter(split=Split.TRAIN).exists():
        raise RunError(NO_TRAINING_EXAMPLES.format(name=dataset.name))
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    method = "-dpo" if config.method == TrainMethod.DPO else ""
    return FineTuneRun.objects.create(
        name=spec.name or f"{dataset.name}-r{config.rank}{method}-{stamp}",
        dataset=dataset,
        base_model=base,
        hyperparameters=config.as_dict(),
        method=config.method,
        from_run=spec.from_run,
        dataset_hash=dataset.content_hash,
        retry_of=spec.retry_of,
        created_by=created_by,
    )


def _continued_config(config: TrainConfig, from_run: FineTuneRun, base: BaseModel) -> TrainConfig:
    """``config`` with the starting adapter's shape, once that adapter is usable here."""
    if from_run.status != RunStatus.SUCCEEDED:
        raise RunError(FROM_RUN_NOT_SUCCEEDED.format(id=from_run.pk, status=from_run.status))
    adapter = Path(from_run.adapter_path) if from_run.adapter_path else None
    if adapter is None or not (adapter / ADAPTER_WEIGHTS).is_file():
        path = from_run.adapter_path or "none recorded"
        raise RunError(FROM_RUN_NO_ADAPTER.format(id=from_run.pk, path=path))
    if from_run.base_model_id != base.pk:
        raise RunError(
            FROM_RUN_OTHER_BASE.format(
                id=from_run.pk, base=from_run.base_model.source, given=base.source
            )
        )
    shape = {name: from_run.hyperparameters[name] for name in ADAPTER_SHAPE}
    return replace(config, **shape)


def _check_preferences(dataset: Dataset, from_run: FineTuneRun | None) -> None:
    if from_run is None:
        raise RunError(DPO_NEEDS_FROM_RUN)
    if dataset.kind != DatasetKind.PREFERENCES:
        raise RunError(NOT_PREFERENCES.format(name=dataset.name, kind=dataset.kind))
    if not dataset_pair_count(dataset=dataset, split=Split.TRAIN):
        raise RunError(NO_PAIRS.format(name=dataset.name))


def run_retry_spec(*, run: FineTuneRun) -> RunSpec:
    """What a retry of ``run`` trains: its dataset, base model and settings from step 0, under
    the first name no run has of ``<name>-retry``, ``<name>-retry-2``, …

    Unlike a resume it needs no checkpoint and keeps none of the run's curve. The dataset was
    accepted for ``run`` (lint errors included, if it was forced), so the lint check is not
    repeated; a dataset whose content changed since is refused.
    """
    if run.status not in RETRYABLE:
        raise RunError(NOT_RETRYABLE.format(id=run.pk, status=run.status))
    if run.dataset.content_hash != run.dataset_hash:
        raise RunError(RETRY_DATASET_CHANGED.format(name=run.dataset.name, id=run.pk))
    try:
        config = run_config(run)
    except ConfigError as error:
        raise RunError(SETTINGS_OUTDATED.format(id=run.pk, error=error)) from error
    return RunSpec(
        dataset=run.dataset,
        config=config,
        base_model=run.base_model.source,
        name=_unused_name(RETRY_SUFFIX.sub("", run.name) + "-retry"),
        force=True,
        retry_of=run,
        from_run=run.from_run,
    )


def _unused_name(base: str) -> str:
    """``base``, else ``base-2``, ``base-3``…: the first name no run has."""
    base = base[:190]  # room for the number within the 200 characters of a name
    taken = set(FineTuneRun.objects.filter(name__startswith=base).values_list("name", flat=True))
    candidates = itertools.chain([base], (f"{base}-{n}" for n in itertools.count(2)))
    return next(name for name in candidates if name not in taken)


def run_create_resume(
    *,
    run: FineTuneRun,
    base_model: str | None = None,
    name: str = "",
    created_by: AbstractBaseUser | None = None,
) -> FineTuneRun:
    """A queued run that continues ``run`` from its last checkpoint, with the same settings.

    The new run starts with the loss-curve points up to that checkpoint, so its curves are
    whole. ``base_model`` may point at the same base elsewhere; another base is refused. The
    checks run outside the transaction: a packaged base may first need its one-time conversion
    (tens of seconds), which must not hold SQLite's write lock.
    """
    if run.status not in RESUMABLE:
        raise RunError(NOT_RESUMABLE.format(id=run.pk, status=run.status))
    checkpoint = Path(run.checkpoint_path) if run.checkpoint_path else None
    try:
        info = read_checkpoint_info(checkpoint) if checkpoint else None
    except FileNotFoundError:
        info = None
    if info is None:
        raise RunError(NO_CHECKPOINT.format(id=run.pk))
    if run.dataset.content_hash != run.dataset_hash:
        raise RunError(DATASET_CHANGED.format(name=run.dataset.name, id=run.pk))
    base = base_model_for(base_model) if base_model else run.base_model
    local = base.local_path or (
        resolve_model_dir(base.source, settings.EVALHUB_MODEL_CACHE)
        if base.source in PACKAGED_MODELS
        else None
    )
    found = read_fingerprint(local) if local else None
    if found and (problem := check_base_matches(info, found)):
        raise RunError(problem)
    return _store_resumed(
        run=run,
        base=base,
        checkpoint=checkpoint,
        step=info["loop"]["step"],
        name=name,
        created_by=created_by,
    )


@transaction.atomic
def _store_resumed(
    *,
    run: FineTuneRun,
    base: BaseModel,
    checkpoint: Path,
    step: int,
    name: str,
    created_by: AbstractBaseUser | None,
) -> FineTuneRun:
    resumed = FineTuneRun.objects.create(
        name=name or f"{run.name}-resumed",
        dataset=run.dataset,
        base_model=base,
        hyperparameters=run.hyperparameters,
        method=run.method,
        from_run=run.from_run,
        dataset_hash=run.dataset_hash,
        step=step,
        total_steps=max(run.total_steps, step),
        checkpoint_path=str(checkpoint),
        resumed_from=run,
        created_by=created_by,
    )
    points = run.metrics.filter(step__lte=step).values(*_CURVE_FIELDS)
    RunMetric.objects.bulk_create(RunMetric(run=resumed, **point) for point in points)
    return resumed


@transaction.atomic
def run_request_cancel(*, run: FineTuneRun) -> FineTuneRun:
    """A queued run is cancelled at once; a running one stops at its next step boundary,
    keeping a checkpoint. Finished runs are left as they are."""
    run = FineTuneRun.objects.select_for_update().get(pk=run.pk)
    if run.status == RunStatus.QUEUED:
        run.status, run.finished_at = RunStatus.CANCELLED, timezone.now()
    if run.status == RunStatus.RUNNING:
        run.cancel_requested = True
    run.save(update_fields=["status", "finished_at", "cancel_requested"])
    return run


@transaction.atomic
def run_mark_orphans(
    *, stale_after: timedelta = ORPHAN_AFTER, now: datetime | None = None
) -> list[FineTuneRun]:
    """Runs left "running" by a dead worker become "interrupted" (``worker_stopped``)."""
    now = now or timezone.now()
    orphans = []
    for run in FineTuneRun.objects.select_for_update().filter(status=RunStatus.RUNNING):
        last = run.heartbeat_at or run.started_at or run.created_at
        if worker_stopped(worker=run.worker, last_seen=last, now=now, stale_after=stale_after):
            run.status, run.finished_at = RunStatus.INTERRUPTED, now
            run.error = ORPHANED.format(worker=run.worker or "?", heartbeat=last, id=run.pk)
            run.eta_seconds = None
            run.save(update_fields=["status", "finished_at", "error", "eta_seconds"])
            orphans.append(run)
    return orphans


def run_config(run: FineTuneRun) -> TrainConfig:
    return TrainConfig.from_dict(run.hyperparameters)
