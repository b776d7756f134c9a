"""manage.py generate --run RUN_ID: base and adapter answer the run's held-out prompts."""

import argparse
from collections.abc import Callable

from django.core.management.base import BaseCommand, CommandError

from evalhub.models import RUN_KINDS
from evalhub.selectors.outputs import run_get
from evalhub.services.outputs import outputs_generate
from trainer.engine.generate import QUANTIZATIONS, DecodingConfig
from trainer.models import Split

# Bad input (unknown run, no adapter, unreadable file, bad option values) exits with 2.
INPUT_ERROR = 2


def add_generation_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=int, required=True, metavar="RUN_ID")
    parser.add_argument("--split", default=Split.TEST, choices=Split.values)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    parser.add_argument(
        "--top-p", type=float, default=1.0, help="nucleus sampling, with temperature"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for sampling")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--quantization",
        default="auto",
        choices=QUANTIZATIONS,
        help="auto: NF4 on CUDA as in training, unquantised float32 on CPU",
    )
    parser.add_argument(
        "--systems", default=",".join(RUN_KINDS), help="comma separated: base,adapter"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="regenerate outputs that already exist"
    )


def run_generation(options: dict, *, log: Callable[[str], None]) -> None:
    """Shared by generate and evaluate: parse options, generate, report each system."""
    try:
        run = run_get(run_id=options["run"])
        decoding = DecodingConfig(
            max_new_tokens=options["max_new_tokens"],
            temperature=options["temperature"],
            top_p=options["top_p"],
            seed=options["seed"],
        )
        outputs_generate(
            run=run,
            decoding=decoding,
            split=options["split"],
            systems=[s.strip() for s in options["systems"].split(",") if s.strip()],
            overwrite=options["overwrite"],
            batch_size=options["batch_size"],
            quantization=options["quantization"],
            progress=options["verbosity"] > 0,
            on_system=lambda r: log(
                f"{r.system}: generated {r.generated}, kept {r.kept} existing ({r.seconds} s)"
            ),
        )
    except ValueError as error:  # OutputsError and invalid decoding settings
        raise CommandError(str(error), returncode=INPUT_ERROR) from error


class Command(BaseCommand):
    help = (
        "Generate outputs of the run's base model and adapter for the held-out prompts, with the "
        "same chat template and decoding settings. Only missing outputs are generated."
    )

    def add_arguments(self, parser):
        add_generation_arguments(parser)

    def handle(self, *args, **options):
        run_generation(options, log=self.stdout.write)
