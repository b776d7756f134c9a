"""manage.py generate --run RUN_ID: base and adapter answer the run's held-out prompts.

With --endpoint URL --model NAME a served model answers them instead (any OpenAI-compatible
server: vLLM with the adapter as a LoRA module, llama.cpp's server, a hosted API), into the
run's base or adapter system (--run RUN_ID --as base|adapter) or, for a dataset's prompts, into
an imported system (--dataset NAME [--system NAME]).
"""

import argparse
import os
from collections.abc import Callable

from django.core.management.base import BaseCommand, CommandError

from evalhub.chat_client import Endpoint
from evalhub.models import RUN_KINDS
from evalhub.selectors.outputs import dataset_get, run_get
from evalhub.services.outputs import outputs_generate
from evalhub.services.served_outputs import ServedIncomplete, outputs_generate_served
from trainer.engine.generate import QUANTIZATIONS, DecodingConfig
from trainer.models import Split

# Bad input (unknown run, no adapter, unreadable file, bad option values, an endpoint that
# cannot be reached or serves no such model) exits with 2.
INPUT_ERROR = 2
# Served generation that stored some answers and missed others exits with 1: run it again.
INCOMPLETE = 1
NO_RUN = "give --run RUN_ID (or --endpoint URL --model NAME with --dataset NAME)"
ENDPOINT_ONLY = "{option} goes with --endpoint"
NO_MODEL = "--endpoint needs --model NAME: the name the server lists its model under"
RUN_OR_DATASET = "--endpoint needs --run RUN_ID --as base|adapter, or --dataset NAME"
AS_WITH_RUN = "--as goes with --run, --system with --dataset"
KEY_MISSING = "the environment variable {var} (--api-key-env) is not set or empty"
BAD_TIMEOUT = "--timeout must be positive, got {value}"


def add_generation_arguments(parser: argparse.ArgumentParser, *, served: bool = False) -> None:
    """The local generation options; with ``served``, the endpoint's too (and --run becomes
    optional, since --dataset may take its place)."""
    parser.add_argument("--run", type=int, required=not served, metavar="RUN_ID")
    parser.add_argument("--split", default=Split.TEST, choices=Split.values)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    parser.add_argument(
        "--top-p", type=float, default=1.0, help="nucleus sampling, with temperature"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for sampling")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="default: from free memory on the fast CUDA path, else 8",
    )
    parser.add_argument(
        "--quantization",
        default="auto",
        choices=QUANTIZATIONS,
        help="auto: on CUDA bf16 with the adapter merged when it fits, else NF4 as in training; "
        "unquantised float32 on CPU",
    )
    parser.add_argument(
        "--systems", default=",".join(RUN_KINDS), help="comma separated: base,adapter"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="regenerate outputs that already exist"
    )
    if served:
        add_endpoint_arguments(parser)


def add_endpoint_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("served model (instead of local generation)")
    group.add_argument("--endpoint", metavar="URL", help="OpenAI-compatible base URL, up to /v1")
    group.add_argument("--model", metavar="NAME", help="the model name the server lists")
    group.add_argument("--api-key-env", metavar="VAR", help="environment variable with the key")
    group.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    group.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="per request, the server's queueing included (retried up to 3 times)",
    )
    group.add_argument(
        "--as", dest="kind", choices=RUN_KINDS, help="with --run: the run system it serves"
    )
    group.add_argument("--dataset", metavar="NAME", help="instead of --run: a dataset's prompts")
    group.add_argument(
        "--system", metavar="NAME", help="with --dataset: the imported system (default: --model)"
    )


def run_generation(options: dict, *, log: Callable[[str], None]) -> None:
    """Shared by generate and evaluate: parse options, generate, report each system."""
    if options["run"] is None:
        raise CommandError(NO_RUN, returncode=INPUT_ERROR)
    try:
        run = run_get(run_id=options["run"])
        decoding = _decoding(options)
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


def _decoding(options: dict) -> DecodingConfig:
    return DecodingConfig(
        max_new_tokens=options["max_new_tokens"],
        temperature=options["temperature"],
        top_p=options["top_p"],
        seed=options["seed"],
    )


def _refuse_endpoint_options(options: dict) -> None:
    for option in ("model", "api_key_env", "kind", "dataset", "system"):
        if options[option]:
            flag = "--as" if option == "kind" else "--" + option.replace("_", "-")
            raise CommandError(ENDPOINT_ONLY.format(option=flag), returncode=INPUT_ERROR)


def _endpoint(options: dict) -> Endpoint:
    if not options["model"]:
        raise CommandError(NO_MODEL, returncode=INPUT_ERROR)
    if (options["run"] is None) == (options["dataset"] is None):
        raise CommandError(RUN_OR_DATASET, returncode=INPUT_ERROR)
    if (options["kind"] and options["dataset"]) or (options["system"] and options["run"]):
        raise CommandError(AS_WITH_RUN, returncode=INPUT_ERROR)
    if options["run"] is not None and not options["kind"]:
        raise CommandError(RUN_OR_DATASET, returncode=INPUT_ERROR)
    key = ""
    if options["api_key_env"]:
        key = os.environ.get(options["api_key_env"], "")
        if not key:
            message = KEY_MISSING.format(var=options["api_key_env"])
            raise CommandError(message, returncode=INPUT_ERROR)
    if options["timeout"] <= 0:
        raise CommandError(BAD_TIMEOUT.format(value=options["timeout"]), returncode=INPUT_ERROR)
    return Endpoint(
        base_url=options["endpoint"],
        model=options["model"],
        api_key=key,
        timeout_s=options["timeout"],
    )


def run_served_generation(options: dict, *, log: Callable[[str], None]) -> None:
    """Parse the endpoint options, ask the served model, report the system."""
    endpoint = _endpoint(options)
    try:
        decoding = _decoding(options)
        target = (
            {"run": run_get(run_id=options["run"]), "kind": options["kind"]}
            if options["run"] is not None
            else {
                "dataset": dataset_get(name=options["dataset"]),
                "system_name": options["system"] or options["model"],
            }
        )
        report = outputs_generate_served(
            endpoint=endpoint,
            decoding=decoding,
            split=options["split"],
            overwrite=options["overwrite"],
            concurrency=options["concurrency"],
            **target,
        )
    except ServedIncomplete as error:
        raise CommandError(str(error), returncode=INCOMPLETE) from error
    except ValueError as error:  # OutputsError and invalid decoding settings
        raise CommandError(str(error), returncode=INPUT_ERROR) from error
    empty = f", {report.empty} of them empty (flagged)" if report.empty else ""
    log(
        f"{report.system}: generated {report.generated}{empty}, kept {report.kept} existing "
        f"({report.seconds} s), served by {endpoint.model} at {endpoint.public_url}"
    )


class Command(BaseCommand):
    help = (
        "Generate outputs of the run's base model and adapter for the held-out prompts, with the "
        "same chat template and decoding settings; or ask a served model (--endpoint) for them. "
        "Only missing outputs are generated."
    )

    def add_arguments(self, parser):
        add_generation_arguments(parser, served=True)

    def handle(self, *args, **options):
        if options["endpoint"]:
            run_served_generation(options, log=self.stdout.write)
            return
        _refuse_endpoint_options(options)
        run_generation(options, log=self.stdout.write)
