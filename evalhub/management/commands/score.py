"""manage.py score --run RUN_ID: ROUGE and BERTScore of the run's outputs, and the summary."""

import argparse
import json
from collections.abc import Callable

from django.core.management.base import BaseCommand, CommandError

from evalhub.management.commands.generate import INPUT_ERROR
from evalhub.metrics import METRICS
from evalhub.metrics.bertscore import encoder_from
from evalhub.selectors.outputs import outputs_summary, run_get
from evalhub.services.scores import outputs_score
from trainer.models import Split


def add_scoring_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--encoder",
        default=None,
        metavar="PATH",
        help="local BERTScore encoder directory (default: the packaged all-MiniLM-L6-v2)",
    )
    parser.add_argument("--num-layers", type=int, default=None, help="default: all layers")
    parser.add_argument("--score-batch-size", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run_scoring(options: dict, *, log: Callable[[str], None]) -> dict:
    """Shared by score and evaluate: score every output of the run, return the summary."""
    try:
        run = run_get(run_id=options["run"])
        encoder = encoder_from(options["encoder"], options["num_layers"])
        report = outputs_score(
            run=run,
            split=options["split"],
            encoder=encoder,
            batch_size=options["score_batch_size"],
        )
    except ValueError as error:
        raise CommandError(str(error), returncode=INPUT_ERROR) from error
    log(
        f"scored {report.scored} outputs ({report.empty} empty, {report.skipped} skipped "
        f"without a reference) with {report.encoder}"
    )
    return outputs_summary(run=run, split=options["split"])


def format_summary(summary: dict) -> str:
    """A plain-text table: one line per system and metric, then the paired difference."""
    lines = [
        f"run {summary['run']} · {summary['dataset']} · {summary['split']} split · "
        f"{summary['prompts']} prompts · encoder {summary['encoder'] or summary['encoders']}"
    ]
    for system in summary["systems"]:
        lines.append(
            f"{system['name']}: {system['n_scored']} scored, {system['n_skipped']} skipped, "
            f"{system['n_empty']} empty"
        )
        lines += [_interval_line(m, system["metrics"].get(m)) for m in METRICS]
    if difference := summary["difference"]:
        lines.append(
            f"{difference['treatment']} − {difference['control']} "
            f"({difference['n_pairs']} paired prompts):"
        )
        lines += [_interval_line(m, difference["metrics"].get(m)) for m in METRICS]
    lines += [f"warning: {w}" for w in summary["warnings"]]
    return "\n".join(lines)


def _interval_line(metric: str, interval: dict | None) -> str:
    if interval is None:
        return f"  {metric:<20} -"
    return (
        f"  {metric:<20} {interval['mean']:+.4f}  95% CI [{interval['low']:+.4f}, "
        f"{interval['high']:+.4f}]  n={interval['n']}"
    )


class Command(BaseCommand):
    help = (
        "Score the run's outputs against the references (ROUGE-1/2/L with stemming, BERTScore "
        "with a local encoder) and print per-system means with bootstrap 95% intervals."
    )

    def add_arguments(self, parser):
        parser.add_argument("--run", type=int, required=True, metavar="RUN_ID")
        parser.add_argument("--split", default=Split.TEST, choices=Split.values)
        add_scoring_arguments(parser)

    def handle(self, *args, **options):
        log = self.stderr.write if options["json"] else self.stdout.write
        summary = run_scoring(options, log=log)
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=2))
        else:
            self.stdout.write(format_summary(summary))
