"""manage.py evaluate --run RUN_ID: generate the missing outputs, then score them."""

import json

from django.core.management.base import BaseCommand

from evalhub.management.commands.generate import add_generation_arguments, run_generation
from evalhub.management.commands.score import add_scoring_arguments, format_summary, run_scoring


class Command(BaseCommand):
    help = "Generate base and adapter outputs for the held-out prompts, then score them."

    def add_arguments(self, parser):
        add_generation_arguments(parser)
        add_scoring_arguments(parser)

    def handle(self, *args, **options):
        # With --json, stdout carries only the JSON summary; progress goes to stderr.
        log = self.stderr.write if options["json"] else self.stdout.write
        run_generation(options, log=log)
        summary = run_scoring(options, log=log)
        self.stdout.write(
            json.dumps(summary, indent=2) if options["json"] else format_summary(summary)
        )
