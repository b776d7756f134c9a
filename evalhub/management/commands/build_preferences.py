"""``manage.py build_preferences --study N --name X``: the next version of a preference set from
a study on feedback prompts, ready for ``finetune --method dpo``.

Exit status: 0 built, 2 refused (the message says why; nothing stored).
"""

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalhub.models import PreferenceSet, Study
from evalhub.services.preferences import PreferenceError, preference_set_build

ERROR_UNKNOWN_STUDY = "No study with id {study_id}."
USAGE_ERROR = 2


def preference_set_report(preference_set: PreferenceSet) -> dict:
    """What ``--json`` prints: the set, its dataset, its counts and its rules."""
    return {
        "name": preference_set.name,
        "version": preference_set.version,
        "dataset": preference_set.dataset.name,
        "study": preference_set.study_id,
        "pairs": preference_set.pair_count,
        "sft_rows": preference_set.sft_count,
        "judgments": preference_set.judgments.count(),
        "rules": preference_set.rules,
    }


class Command(BaseCommand):
    help = "Build a preference set (chosen/rejected pairs and corrections) from a study."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--study", type=int, required=True, help="Study id (feedback prompts)")
        parser.add_argument(
            "--name", required=True, help="Set name; each build is its next version"
        )
        parser.add_argument(
            "--validation-share",
            type=float,
            default=0.1,
            help="Share of rows held out for DPO's early stopping, by prompt (default 0.1)",
        )
        parser.add_argument("--seed", type=int, default=0, help="Seed of the validation draw")
        parser.add_argument(
            "--no-correction-pairs",
            action="store_true",
            help="Corrections make SFT rows only, not also pairs against the answers shown",
        )
        parser.add_argument("--json", action="store_true", help="Print the result as JSON")

    def handle(self, *args, **options) -> None:
        study = Study.objects.filter(pk=options["study"]).first()
        if study is None:
            raise CommandError(
                ERROR_UNKNOWN_STUDY.format(study_id=options["study"]), returncode=USAGE_ERROR
            )
        try:
            built = preference_set_build(
                study=study,
                name=options["name"],
                validation_share=options["validation_share"],
                seed=options["seed"],
                correction_pairs=not options["no_correction_pairs"],
            )
        except PreferenceError as error:
            raise CommandError(str(error), returncode=USAGE_ERROR) from None
        report = preference_set_report(built)
        if options["json"]:
            self.stdout.write(json.dumps(report, ensure_ascii=False, indent=2))
            return
        counts = built.dataset.examples.values_list("split", flat=True)
        validation = sum(1 for split in counts if split == "validation")
        self.stdout.write(
            f"built {built.name} v{built.version} (dataset {report['dataset']}) from study "
            f"{study.pk}: {built.pair_count} pairs "
            f"({built.rules['correction_pairs']['count']} of them a correction over an answer "
            f"shown), {built.sft_count} SFT rows from corrections, "
            f"{validation} of them held out for validation; {report['judgments']} judgments "
            f"of {len(built.rules['raters'])} raters"
        )
        for row in built.rules["left_out"]:
            if row["count"]:
                self.stdout.write(f"  left out {row['count']} {row['unit']} {row['description']}")
        for rater, reasons in built.rules["gated_raters"].items():
            self.stdout.write(f"  gate left out {rater}: {'; '.join(reasons)}")
