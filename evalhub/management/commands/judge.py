"""``manage.py judge --study N [--judge NAME]``: a model judge answers every non-gold comparison
of a study in both orders, here and now (or, with --queue, on a worker). Resumable: questions
already answered are skipped. Starting, it closes judge runs whose worker died as interrupted."""

import sys

from django.core.management.base import BaseCommand, CommandError

from evalhub.models import Study
from evalhub.selectors.judging import DEFAULT_JUDGE
from evalhub.services.judging import (
    JudgeError,
    judge_api_key,
    judge_named,
    judge_run_create,
    judge_run_enqueue,
    judge_run_execute,
    judge_runs_mark_orphans,
)

UNKNOWN_STUDY = "No study with id {id}."
RUN_FAILED = "Judge run {id} failed: {error}"
USAGE_ERROR = 2  # bad arguments: the same exit code argparse uses
RUN_ERROR = 1


class Command(BaseCommand):
    help = (
        "Run a model judge over a study's comparisons, in both orders. The packaged "
        f"{DEFAULT_JUDGE} judge is defined on first use; others with manage.py judge_add."
    )

    def add_arguments(self, parser):
        parser.add_argument("--study", type=int, required=True, help="Study id")
        parser.add_argument("--judge", default=DEFAULT_JUDGE, help=f"default: {DEFAULT_JUDGE}")
        parser.add_argument(
            "--queue", action="store_true", help="queue it for a worker instead of running here"
        )

    def handle(self, *args, **options):
        # A command starting is where a judge run left behind by a dead worker gets noticed.
        judge_runs_mark_orphans()
        study = Study.objects.filter(pk=options["study"]).first()
        if study is None:
            raise CommandError(UNKNOWN_STUDY.format(id=options["study"]), returncode=USAGE_ERROR)
        try:
            judge = judge_named(name=options["judge"])
            if options["queue"]:
                run = judge_run_enqueue(judge=judge, study=study)
                self.stdout.write(f"Judge run {run.pk} queued: {judge} on study {study.pk}.")
                return
            judge_api_key(judge)  # a missing key is bad input, not a failed run
            run = judge_run_create(judge=judge, study=study)
        except JudgeError as error:
            raise CommandError(str(error), returncode=USAGE_ERROR) from error
        run = judge_run_execute(run=run, progress=self._progress(options["verbosity"]))
        self.stdout.write(
            f"Judge run {run.pk} ({judge} on study {study.pk}): {run.status}; "
            f"{run.verdicts_done} verdicts stored, {len(run.errors)} errors, "
            f"{run.tokens_used} tokens."
        )
        if run.error:
            raise CommandError(RUN_FAILED.format(id=run.pk, error=run.error), returncode=RUN_ERROR)

    def _progress(self, verbosity: int):
        def show(done: int, total: int) -> None:
            if verbosity > 0:
                end = "\n" if done == total else ""
                print(f"\r{done}/{total} questions", end=end, file=sys.stderr, flush=True)

        return show
