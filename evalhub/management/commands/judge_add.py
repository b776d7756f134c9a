"""``manage.py judge_add NAME ...``: define a model judge, local or behind an OpenAI-compatible
endpoint. The key is never stored: --api-key-env names the variable that holds it."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from evalhub.models import JudgeBackend
from evalhub.selectors.judging import DEFAULT_JUDGE
from evalhub.services.judging import JudgeError, judge_create

TEMPLATE_UNREADABLE = "Cannot read the template file {path}: {reason}."
USAGE_ERROR = 2  # bad arguments: the same exit code argparse uses


class Command(BaseCommand):
    help = (
        "Define a model judge: --backend local (a packaged model, a local directory or a hub id) "
        "or --backend http (an OpenAI-compatible /v1/chat/completions endpoint)."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="a slug, e.g. qwen-72b")
        parser.add_argument("--backend", default=JudgeBackend.LOCAL, choices=JudgeBackend.values)
        parser.add_argument(
            "--model",
            default=DEFAULT_JUDGE,
            help="local: smollm2-135m, a directory or a hub id; http: the served model name",
        )
        parser.add_argument("--url", default="", help="http: base URL, e.g. http://host:8000/v1")
        parser.add_argument("--api-key-env", default="", help="name of the env var with the key")
        parser.add_argument(
            "--template", type=Path, help="prompt template file; default: the built-in one"
        )
        parser.add_argument("--use-reference", action="store_true", help="show the reference")
        parser.add_argument("--max-tokens", type=int, default=16)
        parser.add_argument("--temperature", type=float, default=0.0)
        parser.add_argument("--timeout", type=float, default=60.0, help="seconds per call")
        parser.add_argument("--retries", type=int, default=3)
        parser.add_argument("--concurrency", type=int, default=4, help="calls in flight")
        parser.add_argument(
            "--token-budget", type=int, default=0, help="tokens per study, 0 = no limit"
        )

    def handle(self, *args, **options):
        template = ""
        if options["template"] is not None:
            try:
                template = options["template"].read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                message = TEMPLATE_UNREADABLE.format(path=options["template"], reason=error)
                raise CommandError(message, returncode=USAGE_ERROR) from error
        try:
            judge = judge_create(
                name=options["name"],
                backend=options["backend"],
                model=options["model"],
                base_url=options["url"],
                api_key_env=options["api_key_env"],
                template=template,
                use_reference=options["use_reference"],
                max_tokens=options["max_tokens"],
                temperature=options["temperature"],
                timeout_s=options["timeout"],
                max_retries=options["retries"],
                concurrency=options["concurrency"],
                token_budget=options["token_budget"],
            )
        except JudgeError as error:
            raise CommandError(str(error), returncode=USAGE_ERROR) from error
        self.stdout.write(f"Judge {judge.name} defined ({judge.backend}, {judge.model}).")
