"""Write a study's report to a file: ``manage.py export_report --study ID --format FMT --out PATH``.

The report is written to a temporary file beside PATH and renamed over it only when complete,
so a failure never leaves a half-written report (and never clobbers an older one).
"""

import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalhub.models import Study
from evalhub.reports.build import report_build
from evalhub.reports.render import REPORT_FORMATS, ReportError, report_render

UNKNOWN_STUDY = "No study with id {study}."
UNKNOWN_FORMAT = "Unknown format {fmt!r}: choose one of html, pdf, csv, json."
UNWRITABLE = "Cannot write the report to {path}: {error}"
USAGE_ERROR = 2


class Command(BaseCommand):
    help = "Export a study's analysis report as HTML, PDF, CSV (one row per judgment) or JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--study", type=int, required=True, help="Study id")
        parser.add_argument(
            "--format", dest="fmt", required=True, help=f"One of {', '.join(REPORT_FORMATS)}"
        )
        parser.add_argument("--out", type=Path, required=True, help="File to write")

    def handle(self, *args, study: int, fmt: str, out: Path, **options) -> None:
        if fmt not in REPORT_FORMATS:
            raise CommandError(UNKNOWN_FORMAT.format(fmt=fmt), returncode=USAGE_ERROR)
        target = Study.objects.filter(pk=study).first()
        if target is None:
            raise CommandError(UNKNOWN_STUDY.format(study=study), returncode=USAGE_ERROR)
        out = out.expanduser().resolve()
        try:
            handle, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        except OSError as error:
            raise _unwritable(out, error) from error
        try:
            with os.fdopen(handle, "wb") as f:
                try:
                    body = report_render(report_build(target), fmt)
                except ReportError as error:
                    raise CommandError(str(error)) from error
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, out)
        except OSError as error:
            Path(tmp_name).unlink(missing_ok=True)
            raise _unwritable(out, error) from error
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        self.stdout.write(f"wrote {fmt} report of study {target.pk} to {out} ({len(body)} bytes)")


def _unwritable(path: Path, error: OSError) -> CommandError:
    return CommandError(
        UNWRITABLE.format(path=path, error=error.strerror or error), returncode=USAGE_ERROR
    )
