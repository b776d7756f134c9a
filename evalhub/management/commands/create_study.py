"""``manage.py create_study --run RUN_ID``: a blinded study of a run's base model vs its adapter
(or any systems), with raters, criteria, guidelines and gold items."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from evalhub.analysis.rater_quality import DEFAULT_MIN_GOLD_ACCURACY, DEFAULT_MIN_MEDIAN_SECONDS
from evalhub.models import Allocation, Study, StudyStatus, System
from evalhub.roles import EXPERT_GROUP
from evalhub.selectors.lineage import lineage_systems
from evalhub.selectors.outputs import run_systems
from evalhub.selectors.studies import allocation_budget, study_counts, study_rater_stats
from evalhub.services.gold import GoldError, gold_load
from evalhub.services.studies import StudyError, study_create, study_set_status
from trainer.models import FineTuneRun, Split
from trainer.selectors.runs import run_root

ERROR_UNKNOWN_RUN = "No fine-tuning run with id {run_id}."
ERROR_UNKNOWN_SYSTEMS = "Unknown systems: {names}. Known: {known}."
ERROR_NO_DEFAULT_SYSTEM = (
    "Run {run_id} has no {kind} system yet: generate outputs first (manage.py generate) "
    "or name the systems with --systems."
)
ERROR_UNKNOWN_RATERS = "Unknown or inactive raters: {names}."
ERROR_NO_RATERS = "No rater given and nobody is in the expert group (manage.py createexpert)."
ERROR_PROMPTS = "--prompts takes a number or 'all'; got {value!r}."
ERROR_GUIDELINES = "Cannot read the guidelines file {path}: {reason}."
USAGE_ERROR = 2  # bad arguments: the same exit code argparse uses


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


class Command(BaseCommand):
    help = "Create a blinded pairwise study of a run's outputs and assign it to raters."

    def add_arguments(self, parser):
        parser.add_argument("--run", type=int, required=True, help="Fine-tuning run id")
        parser.add_argument(
            "--systems",
            help="Comma separated system names; 'base' and 'adapter' mean the run's own. "
            "Default: base,adapter; for a run that starts from another run's adapter, the "
            "first run's base and the adapter of every run of the chain (base, v1, v2)",
        )
        parser.add_argument("--prompts", default="all", help="How many prompts (sampled), or all")
        parser.add_argument(
            "--split",
            default=Split.TEST,
            choices=Split.values,
            help="The split whose prompts the study is on: test (default; its judgments decide "
            "and never train) or feedback (its judgments may train: build_preferences)",
        )
        parser.add_argument("--raters", help="Comma separated usernames; default: every expert")
        parser.add_argument("--overlap", type=int, default=2, help="Raters per comparison")
        parser.add_argument("--criteria", default="", help='e.g. "correctness,helpfulness,style"')
        parser.add_argument("--guidelines", type=Path, help="Markdown file shown to raters")
        parser.add_argument("--show-reference", action="store_true", help="Show reference answers")
        parser.add_argument("--gold", type=Path, help="Gold comparisons, JSONL")
        parser.add_argument("--name", help="Study name (raters see it); default: a dated one")
        parser.add_argument("--seed", type=int, help="Seed for sampling, order and sides")
        parser.add_argument("--open", action="store_true", help="Open the study for rating now")
        parser.add_argument(
            "--stop-when-decided",
            action="store_true",
            help="Pause the study (raters are told it is complete) once the always-valid "
            "verdict is reached; default: keep collecting",
        )
        parser.add_argument(
            "--equivalence-margin",
            type=float,
            default=0.05,
            help="Win rates within 0.5 ± this are 'equivalent'; 0 for no such verdict "
            "(default 0.05)",
        )
        parser.add_argument(
            "--allocation",
            choices=Allocation.values,
            default=Allocation.UNIFORM,
            help="uniform: every comparison to --overlap raters (default); adaptive: each "
            "rater's next item drawn where a judgment says most (two systems only)",
        )
        parser.add_argument(
            "--raters-at-large",
            action="store_true",
            help="Make the verdict speak for raters at large, widened for how much raters "
            "differ (5+ raters); default: a verdict about the study's own raters",
        )

        parser.add_argument(
            "--min-gold-accuracy",
            type=float,
            default=DEFAULT_MIN_GOLD_ACCURACY,
            help="Leave out of the verdict a rater with a lower share of gold items right, "
            "once they have judged 3; 0 checks nothing (default 0.5)",
        )
        parser.add_argument(
            "--min-median-seconds",
            type=float,
            default=DEFAULT_MIN_MEDIAN_SECONDS,
            help="Leave out of the verdict a rater whose median time per item is shorter; "
            "0 checks nothing (default 3)",
        )

    def fail(self, message: str) -> CommandError:
        return CommandError(message, returncode=USAGE_ERROR)

    def handle(self, *args, **options):
        run = FineTuneRun.objects.filter(pk=options["run"]).select_related("base_model").first()
        if run is None:
            raise self.fail(ERROR_UNKNOWN_RUN.format(run_id=options["run"]))
        names = _split(options["systems"])
        systems = self.systems(run, names) if names else self.default_systems(run)
        raters = self.raters(_split(options["raters"]))
        prompts = self.prompt_count(options["prompts"])
        guidelines = ""
        if options["guidelines"]:
            try:
                guidelines = options["guidelines"].read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or "not UTF-8 text"
                raise self.fail(
                    ERROR_GUIDELINES.format(path=options["guidelines"], reason=reason)
                ) from exc
        try:
            gold = []
            if options["gold"]:
                gold = gold_load(options["gold"], require_reference=options["show_reference"])
            study = study_create(
                name=options["name"] or self.default_name(),
                systems=systems,
                prompts=prompts,
                raters=raters,
                overlap=options["overlap"],
                criteria=_split(options["criteria"]),
                guidelines=guidelines,
                show_reference=options["show_reference"],
                gold=gold,
                run=run,
                seed=options["seed"],
                stop_when_decided=options["stop_when_decided"],
                equivalence_margin=options["equivalence_margin"],
                raters_at_large=options["raters_at_large"],
                allocation=options["allocation"],
                min_gold_accuracy=options["min_gold_accuracy"],
                min_median_seconds=options["min_median_seconds"],
                split=options["split"],
            )
            if options["open"]:
                study = study_set_status(study=study, status=StudyStatus.OPEN)
        except (GoldError, StudyError) as exc:
            raise self.fail(str(exc)) from exc
        self.report(study)

    def systems(self, run: FineTuneRun, names: list[str]) -> list[System]:
        defaults = {kind: s for kind, s in run_systems(run=run).items() if s is not None}
        chosen, unknown = [], []
        for name in names:
            if name in ("base", "adapter"):
                if name not in defaults:
                    raise self.fail(ERROR_NO_DEFAULT_SYSTEM.format(run_id=run.pk, kind=name))
                chosen.append(defaults[name])
            elif system := System.objects.filter(name=name).first():
                chosen.append(system)
            else:
                unknown.append(name)
        if unknown:
            known = ", ".join(System.objects.values_list("name", flat=True)) or "none"
            raise self.fail(ERROR_UNKNOWN_SYSTEMS.format(names=", ".join(unknown), known=known))
        return chosen

    def default_systems(self, run: FineTuneRun) -> list[System]:
        if run.from_run_id is None:
            return self.systems(run, ["base", "adapter"])
        chosen = lineage_systems(run=run)
        if not chosen or chosen[0].kind != "base":
            root = run_root(run=run)
            raise self.fail(ERROR_NO_DEFAULT_SYSTEM.format(run_id=root.pk, kind="base"))
        if chosen[-1].run_id != run.pk:
            raise self.fail(ERROR_NO_DEFAULT_SYSTEM.format(run_id=run.pk, kind="adapter"))
        return chosen

    def raters(self, usernames: list[str]) -> list:
        users = get_user_model().objects.filter(is_active=True)
        if not usernames:
            experts = list(users.filter(groups__name=EXPERT_GROUP).order_by("username"))
            if not experts:
                raise self.fail(ERROR_NO_RATERS)
            return experts
        found = {u.get_username(): u for u in users.filter(username__in=usernames)}
        missing = [name for name in usernames if name not in found]
        if missing:
            raise self.fail(ERROR_UNKNOWN_RATERS.format(names=", ".join(missing)))
        return [found[name] for name in usernames]

    def prompt_count(self, value: str) -> int | None:
        if value.strip().lower() == "all":
            return None
        try:
            return int(value)
        except ValueError:
            raise self.fail(ERROR_PROMPTS.format(value=value)) from None

    def default_name(self) -> str:
        # Neutral on purpose: raters see the name, so it must not say what is compared.
        base = "Study"
        name, number = base, 1
        while Study.objects.filter(name=name).exists():
            number += 1
            name = f"{base} {number}"
        return name

    def report(self, study: Study) -> None:
        counts = study_counts(study=study)
        head = (
            f"created study {study.pk} {study.name!r} ({study.status}): "
            f"{counts.comparisons} comparisons ({counts.gold} gold), "
        )
        if study.allocation == Allocation.ADAPTIVE:
            # Nothing regular is assigned yet: each rater's next item is drawn when they ask.
            self.stdout.write(
                f"{head}adaptive: each item drawn when a rater asks, at most "
                f"{allocation_budget(study=study)} judgments from {study.raters.count()} raters"
            )
            return
        self.stdout.write(f"{head}{counts.assignments} assignments to {counts.raters} raters")
        for row in sorted(study_rater_stats(study=study), key=lambda r: r.rater.get_username()):
            self.stdout.write(f"  {row.rater.get_username()}: {row.assigned} assignments")
