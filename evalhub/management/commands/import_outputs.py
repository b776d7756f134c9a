"""manage.py import_outputs PATH --system NAME --dataset NAME: outputs made elsewhere."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from evalhub.management.commands.generate import INPUT_ERROR
from evalhub.selectors.outputs import OutputsError
from evalhub.services.output_import import outputs_import
from trainer.models import Split


class Command(BaseCommand):
    help = (
        'Import a JSONL file of outputs ({"prompt_id": ID or "prompt": TEXT, "output": TEXT} a '
        "line) for a dataset's held-out prompts into a system of kind 'imported'. All or nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--system", required=True, help="name of the imported system")
        parser.add_argument("--dataset", required=True, help="dataset whose prompts were answered")
        parser.add_argument("--split", default=Split.TEST, choices=Split.values)

    def handle(self, *args, path, system, dataset, split, **options):
        try:
            report = outputs_import(
                path=path, system_name=system, dataset_name=dataset, split=split
            )
        except OutputsError as error:
            raise CommandError(str(error), returncode=INPUT_ERROR) from error
        self.stdout.write(
            f"{report.system}: {report.created} created, {report.updated} updated, "
            f"{report.unchanged} unchanged"
        )
