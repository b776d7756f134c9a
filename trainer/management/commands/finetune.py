r"""manage.py finetune: train a QLoRA adapter on a dataset, in the foreground, with a progress bar.

    python manage.py finetune --dataset demo
    python manage.py finetune --resume 12
    python manage.py finetune --dataset demo --enqueue     # a gpu worker trains it
    python manage.py finetune --method dpo --preferences kitchen --from-run 12
    python manage.py finetune --preferences kitchen --from-run 12   # SFT on the chosen answers
    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no \
        --dynamo_backend no manage.py finetune --dataset demo

(--multi_gpu also on a machine without GPUs: it starts torchrun-style processes, which train
on CPU over gloo; only rank 0 writes to the database and prints the summary.)

Exit codes: 0 succeeded, 1 failed, 2 bad input (nothing run), 130 cancelled (Ctrl-C),
143 interrupted (SIGTERM). Both stops keep the last checkpoint for --resume.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trainer.engine.config import FIELD_CHOICES, ConfigError, TrainConfig, field_help
from trainer.engine.model_store import DEFAULT_BASE_MODEL
from trainer.models import Dataset, FineTuneRun, RunStatus, Split
from trainer.selectors.datasets import dataset_pair_count, preference_dataset
from trainer.services.run_progress import CTRL_C_CANCELS, StopRequest, stop_on_signals
from trainer.services.run_queue import run_enqueue
from trainer.services.run_training import run_execute
from trainer.services.runs import (
    RunError,
    RunSpec,
    run_config,
    run_create,
    run_create_resume,
    run_mark_orphans,
)

DATASET_NOT_FOUND = "no dataset named {name!r} (known: {known}); import one with import_dataset"
DATASET_REQUIRED = "--dataset NAME or --preferences NAME is required (or --resume RUN_ID)"
PREFERENCES_NOT_FOUND = (
    "no preference set named {name!r} (neither a dataset of that name nor {name}-v<N>); build "
    "one from a feedback study"
)
BOTH_DATASETS = "give --dataset or --preferences, not both"
NO_VALIDATION_PAIRS = (
    "warning: preference set {name!r} has no validation pair: DPO trains without early "
    "stopping and keeps the last adapter"
)
RUN_NOT_FOUND = "no run with id {id}"
RESUME_CHANGES = (
    "--resume continues run {id} with its own settings; these differ: {changes} "
    "(start a new run to change them)"
)
RESUME_OTHER_DATASET = "--resume {id}: that run trained on dataset {name!r}, not {given!r}"
QUEUED = (
    "run {id} queued (task {task}) on the gpu queue; a worker started with "
    "`manage.py db_worker --queue-name gpu` trains it"
)
REFUSED_ELSEWHERE = "the main process refused the run; see its message"
BAD_INPUT = 2
EXIT_STATUS = {RunStatus.FAILED: 1, RunStatus.CANCELLED: 130, RunStatus.INTERRUPTED: 143}

# (option, TrainConfig field, type)
CONFIG_OPTIONS = [
    ("--method", "method", str),
    ("--beta", "beta", float),
    ("--rank", "rank", int),
    ("--alpha", "alpha", int),
    ("--lr", "learning_rate", float),
    ("--scheduler", "scheduler", str),
    ("--warmup-ratio", "warmup_ratio", float),
    ("--epochs", "epochs", int),
    ("--patience", "patience", int),
    ("--eval-every", "eval_every", int),
    ("--batch-size", "batch_size", int),
    ("--grad-accum", "grad_accum", int),
    ("--max-seq-len", "max_seq_len", int),
    ("--max-steps", "max_steps", int),
    ("--target-modules", "target_modules", str),
    ("--dropout", "dropout", float),
    ("--seed", "seed", int),
    ("--gradient-checkpointing", "gradient_checkpointing", str),
    ("--packing", "packing", str),
]


class Command(BaseCommand):
    help = (
        "Fine-tune a QLoRA adapter (4-bit NF4 base, LoRA on all linear layers) on a dataset's "
        "train split, with early stopping on its validation split; or, with --method dpo, "
        "improve a run's adapter on a preference set's pairs (DPO, Rafailov et al. 2023)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", metavar="NAME", help="name of an imported dataset")
        parser.add_argument(
            "--preferences",
            metavar="NAME",
            help="a preference set: its dataset's name, or the set's name for its latest "
            "version. DPO trains on its pairs; SFT on its chosen answers (pairs and corrections)",
        )
        parser.add_argument(
            "--from-run",
            metavar="RUN_ID",
            type=int,
            help="start from this succeeded run's adapter, keeping its rank, alpha and target "
            "modules and its base model; for DPO (required there) it is also the reference",
        )
        parser.add_argument(
            "--base-model",
            metavar="smollm2-135m|PATH|HUB_ID",
            help=f"the packaged default runs on a laptop with no network, converted once to a "
            f"cache; or a local directory or hub id (default: {DEFAULT_BASE_MODEL})",
        )
        for option, field, kind in CONFIG_OPTIONS:
            extra: dict[str, Any] = (
                {"choices": FIELD_CHOICES[field]} if field in FIELD_CHOICES else {}
            )
            metavar = option.removeprefix("--").upper().replace("-", "_")
            parser.add_argument(
                option, dest=field, type=kind, metavar=metavar, help=field_help(field), **extra
            )
        parser.add_argument(
            "--resume", metavar="RUN_ID", type=int, help="continue a stopped run's checkpoint"
        )
        parser.add_argument("--name", help="run name (default: dataset, rank and time)")
        parser.add_argument("--json", action="store_true", help="print a JSON summary at the end")
        parser.add_argument("--force", action="store_true", help="train despite lint errors")
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="queue the run for a worker (manage.py db_worker --queue-name gpu) instead of "
            "training here",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from trainer.engine.distributed import dist_context

        if options["enqueue"]:
            self.enqueue(options)
            return
        context = dist_context()
        run_id = None
        if context.is_main:
            run_mark_orphans()
            try:
                run_id = self.create_run(options).pk
            finally:
                # The other processes wait for the id; None tells them to give up too.
                context.broadcast(run_id)
        else:
            run_id = context.broadcast(None)
            if run_id is None:
                raise CommandError(REFUSED_ELSEWHERE, returncode=BAD_INPUT)
        run = FineTuneRun.objects.select_related("dataset", "base_model").get(pk=run_id)

        stop = StopRequest()
        with stop_on_signals(stop, CTRL_C_CANCELS):
            try:
                run = run_execute(run=run, stop=stop, show_progress=options["verbosity"] > 0)
            except KeyboardInterrupt:
                run.refresh_from_db()
        if not context.is_main:
            return
        if options["json"]:
            self.stdout.write(json.dumps(run_summary(run), indent=2))
        else:
            self.stdout.write(describe(run))
        if run.status in EXIT_STATUS:
            raise CommandError(
                f"run {run.pk} {run.status}: {run.error or 'see above'}",
                returncode=EXIT_STATUS[run.status],
            )

    def enqueue(self, options: dict[str, Any]) -> None:
        run = self.create_run(options)
        task_id = run_enqueue(run=run)  # marks the run failed if it cannot be queued
        self.stdout.write(QUEUED.format(id=run.pk, task=task_id))

    def create_run(self, options: dict[str, Any]) -> FineTuneRun:
        overrides = {f: options[f] for _, f, _ in CONFIG_OPTIONS if options[f] is not None}
        try:
            if options["resume"] is not None:
                return self.resume_run(options, overrides)
            dataset = self.dataset(options)
            from_run = None
            if options["from_run"] is not None:
                from_run = FineTuneRun.objects.filter(pk=options["from_run"]).first()
                if from_run is None:
                    message = RUN_NOT_FOUND.format(id=options["from_run"])
                    raise CommandError(message, returncode=BAD_INPUT)
            default_base = from_run.base_model.source if from_run else DEFAULT_BASE_MODEL
            spec = RunSpec(
                dataset=dataset,
                config=TrainConfig.for_method(overrides.pop("method", "sft"), **overrides),
                base_model=options["base_model"] or default_base,
                name=options["name"] or "",
                force=options["force"],
                from_run=from_run,
            )
            run = run_create(spec=spec)
        except (RunError, ConfigError) as error:
            raise CommandError(str(error), returncode=BAD_INPUT) from error
        if run.method == "dpo" and not dataset_pair_count(dataset=dataset, split=Split.VALIDATION):
            self.stderr.write(NO_VALIDATION_PAIRS.format(name=dataset.name))
        return run

    def dataset(self, options: dict[str, Any]) -> Dataset:
        """The dataset named by --dataset, or the preference set named by --preferences."""
        if options["dataset"] and options["preferences"]:
            raise CommandError(BOTH_DATASETS, returncode=BAD_INPUT)
        if options["preferences"]:
            found = preference_dataset(name=options["preferences"])
            if found is None:
                message = PREFERENCES_NOT_FOUND.format(name=options["preferences"])
                raise CommandError(message, returncode=BAD_INPUT)
            return found
        if not options["dataset"]:
            raise CommandError(DATASET_REQUIRED, returncode=BAD_INPUT)
        dataset = Dataset.objects.filter(name=options["dataset"]).first()
        if dataset is None:
            known = ", ".join(Dataset.objects.values_list("name", flat=True)) or "none"
            message = DATASET_NOT_FOUND.format(name=options["dataset"], known=known)
            raise CommandError(message, returncode=BAD_INPUT)
        return dataset

    def resume_run(self, options: dict[str, Any], overrides: dict[str, Any]) -> FineTuneRun:
        previous = FineTuneRun.objects.filter(pk=options["resume"]).first()
        if previous is None:
            raise CommandError(RUN_NOT_FOUND.format(id=options["resume"]), returncode=BAD_INPUT)
        if options["dataset"] and options["dataset"] != previous.dataset.name:
            message = RESUME_OTHER_DATASET.format(
                id=previous.pk, name=previous.dataset.name, given=options["dataset"]
            )
            raise CommandError(message, returncode=BAD_INPUT)
        saved = run_config(previous).as_dict()
        changes = [f"{k} {saved[k]!r} → {v!r}" for k, v in overrides.items() if saved[k] != v]
        if changes:
            message = RESUME_CHANGES.format(id=previous.pk, changes=", ".join(changes))
            raise CommandError(message, returncode=BAD_INPUT)
        return run_create_resume(
            run=previous, base_model=options["base_model"], name=options["name"] or ""
        )


def run_summary(run: FineTuneRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "name": run.name,
        "status": run.status,
        "dataset": run.dataset.name,
        "dataset_hash": run.dataset_hash,
        "base_model": run.base_model.source,
        "resumed_from": run.resumed_from_id,
        "method": run.method,
        "from_run": run.from_run_id,
        "step": run.step,
        "total_steps": run.total_steps,
        "best_val_loss": run.best_val_loss,
        "best_step": run.best_step,
        "early_stopped": run.early_stopped,
        "adapter_path": run.adapter_path,
        "adapter_size_bytes": run.adapter_size_bytes,
        "checkpoint_path": run.checkpoint_path,
        "trainable_params": run.trainable_params,
        "total_params": run.total_params,
        "trainable_share": run.trainable_share,
        "peak_memory_bytes": run.peak_memory_bytes,
        "wall_seconds": run.wall_seconds,
        "hyperparameters": run.hyperparameters,
        "plan": run.plan,
        "environment": run.environment,
        "error": run.error,
    }


def describe(run: FineTuneRun) -> str:
    lines = [f"run {run.pk} ({run.name}): {run.status} at step {run.step}/{run.total_steps}"]
    if run.best_val_loss is not None:
        early = " (stopped early)" if run.early_stopped else ""
        lines.append(f"best validation loss {run.best_val_loss:.4f} at step {run.best_step}{early}")
    if run.adapter_path:
        size = (run.adapter_size_bytes or 0) / 1e6
        lines.append(f"adapter: {run.adapter_path} ({size:.1f} MB)")
    if run.status in (RunStatus.CANCELLED, RunStatus.INTERRUPTED) and run.checkpoint_path:
        lines.append(f"checkpoint kept: {run.checkpoint_path}; continue with --resume {run.pk}")
    return "\n".join(lines)
