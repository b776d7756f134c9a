"""``manage.py plan_study --win-rate 0.6``: how many judgments and prompts a study needs to tell
that win rate from 50 %, with ties and the correlation of judgments of one prompt or one rater
(measured in the project's earlier studies, else stated defaults) taken into account."""

import dataclasses
import json

from django.core.management.base import BaseCommand, CommandError

from evalhub.analysis.planning import PlanError
from evalhub.selectors.studies import study_plan

USAGE_ERROR = 2  # bad arguments: the same exit code argparse uses
ERROR_FIELD = "--{flag}: {message}"


SCOPE = {
    False: "a verdict about the study's own raters (--raters-at-large to speak for raters beyond)",
    True: "a verdict about raters at large, widened for how much raters differ",
}


class Command(BaseCommand):
    help = "Plan a study's size: judgments and prompts needed to tell a win rate from 50 %."

    def add_arguments(self, parser):
        parser.add_argument(
            "--win-rate",
            type=float,
            required=True,
            help="The adapter's share of decisive judgments worth detecting, e.g. 0.6",
        )
        parser.add_argument(
            "--tie-rate", type=float, default=0.0, help="Expected share of ties (default 0)"
        )
        parser.add_argument("--power", type=float, default=0.8, help="Default 0.8")
        parser.add_argument("--alpha", type=float, default=0.05, help="Two-sided; default 0.05")
        parser.add_argument(
            "--overlap", type=int, default=2, help="Raters per comparison (default 2)"
        )
        parser.add_argument("--raters", type=int, help="Raters in the study; default: overlap")
        parser.add_argument(
            "--raters-at-large",
            action="store_true",
            help="Size for a verdict about raters at large, not only the study's own",
        )
        parser.add_argument("--json", action="store_true", help="Print the plan as JSON")

    def handle(self, *args, **options):
        try:
            plan = study_plan(
                win_rate=options["win_rate"],
                tie_rate=options["tie_rate"],
                power=options["power"],
                alpha=options["alpha"],
                overlap=options["overlap"],
                raters=options["raters"],
                raters_at_large=options["raters_at_large"],
            )
        except PlanError as exc:
            flag = exc.field.replace("_", "-")
            message = ERROR_FIELD.format(flag=flag, message=exc)
            raise CommandError(message, returncode=USAGE_ERROR) from exc
        if options["json"]:
            self.stdout.write(json.dumps(dataclasses.asdict(plan)))
            return
        self.stdout.write(
            f"{plan.judgments} judgments on {plan.prompts} prompts "
            f"(overlap {plan.overlap}, {plan.raters} raters), about {plan.decisive} decisive\n"
            f"  {plan.decisive_independent} decisive judgments if all were independent "
            f"(win rate {plan.win_rate}, alpha {plan.alpha} two-sided, power {plan.power})\n"
            f"  design effect {plan.design_effect:.2f}: prompt correlation "
            f"{plan.prompt_icc:.3f}, rater correlation {plan.rater_icc:.3f} "
            f"({plan.correlations_from})\n"
            f"  {SCOPE[plan.raters_at_large]}"
        )
