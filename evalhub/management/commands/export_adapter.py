"""``manage.py export_adapter --run N --out DIR [--merged] [--force]``: the run's peft adapter
and a model card (README.md) in DIR; with ``--merged`` also the base model with the adapter
folded in, under DIR/merged (loads torch: for a worker machine, never the web process)."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from evalhub.reports.adapter_export import MERGED, AdapterExportError, adapter_export_write
from trainer.models import FineTuneRun

ERROR_UNKNOWN_RUN = "No fine-tuning run with id {run_id}."
ERROR_BASE_MODEL = "Cannot find the base model {source!r} to merge into: {reason}"
USAGE_ERROR = 2


class Command(BaseCommand):
    help = "Export a run's adapter with a model card, optionally merged into its base model."

    def add_arguments(self, parser):
        parser.add_argument("--run", type=int, required=True, help="Fine-tuning run id")
        parser.add_argument("--out", type=Path, required=True, help="Directory to write")
        parser.add_argument(
            "--merged",
            action="store_true",
            help="Also write the base model with the adapter merged in (float32), to DIR/merged",
        )
        parser.add_argument(
            "--force", action="store_true", help="Write into DIR even if it is not empty"
        )

    def handle(self, *args, **options):
        runs = FineTuneRun.objects.select_related("base_model", "dataset")
        run = runs.filter(pk=options["run"]).first()
        if run is None:
            raise CommandError(
                ERROR_UNKNOWN_RUN.format(run_id=options["run"]), returncode=USAGE_ERROR
            )
        out: Path = options["out"]
        try:
            written = adapter_export_write(run=run, out=out, force=options["force"])
        except AdapterExportError as exc:
            raise CommandError(str(exc), returncode=USAGE_ERROR) from exc
        self.stdout.write(f"wrote {len(written)} files to {out}")
        if options["merged"]:
            merged = self.merge(run, out / MERGED)
            self.stdout.write(f"wrote the merged model to {merged}")

    def merge(self, run: FineTuneRun, target: Path) -> Path:
        from trainer.engine.merge import merge_adapter
        from trainer.engine.model_store import ModelNotFound, resolve_model_dir

        source = run.base_model.local_path or run.base_model.source
        try:
            model_dir = resolve_model_dir(source, settings.EVALHUB_MODEL_CACHE)
        except ModelNotFound as exc:
            raise CommandError(
                ERROR_BASE_MODEL.format(source=source, reason=exc), returncode=USAGE_ERROR
            ) from exc
        return merge_adapter(model_dir, run.adapter_path, target)
