"""python manage.py import_dataset PATH|hub:OWNER/NAME --name NAME [...]: read, lint, split and
store a dataset.

Exit status: 0 imported, 1 refused by lint (nothing stored), 2 unusable input or options.
"""

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from trainer.datasets import (
    AUTO,
    DEFAULT_MAX_TOKENS,
    DEFAULT_RATIOS,
    FORMATS,
    DatasetError,
    InvalidSplit,
    ReadOptions,
    parse_ratios,
)
from trainer.datasets.hub import DEFAULT_HUB_SPLIT, hub_repo
from trainer.datasets.normalise import TokenCounter
from trainer.datasets.split import Ratios
from trainer.services.datasets import (
    DatasetImportResult,
    DatasetNameError,
    ImportSpec,
    dataset_import,
    dataset_import_hub,
)

FILE_NOT_FOUND = "{path}: no such file or folder"
SPLIT_NAME_NEEDS_HUB = (
    "--split {value!r} names a split, which only a hub dataset has; for a file give shares such "
    "as 0.8,0.1,0.1"
)
TOKENIZER_FAILED = "cannot load the tokenizer of {spec!r}: {detail}"
MAX_LINES_SHOWN = 12
EXIT_REFUSED, EXIT_UNUSABLE = 1, 2


def load_token_counter(spec: str) -> TokenCounter:
    """Token counts from the base model's own tokenizer (only the tokenizer is loaded)."""
    from transformers import AutoTokenizer

    from trainer.engine.model_store import ModelNotFound, resolve_model_dir

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            resolve_model_dir(spec, settings.EVALHUB_MODEL_CACHE)
        )
    except (ModelNotFound, OSError, ValueError) as error:
        raise CommandError(
            TOKENIZER_FAILED.format(spec=spec, detail=error), returncode=EXIT_UNUSABLE
        ) from None

    def count(text: str) -> int:
        # verbose=False: a long example is what the linter reports, not a library warning.
        return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    return count


def format_lines(lines: list[int]) -> str:
    shown = ", ".join(str(n) for n in lines[:MAX_LINES_SHOWN])
    hidden = len(lines) - MAX_LINES_SHOWN
    return f"{shown}, … (+{hidden})" if hidden > 0 else shown or "-"


class Command(BaseCommand):
    help = "Import a fine-tuning dataset: read, normalise, lint, split and store it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "path",
            help="JSONL, JSON array, CSV/TSV, transcript or Parquet file, a folder written by "
            "datasets' save_to_disk, or hub:OWNER/NAME (needs the datasets library and a network)",
        )
        parser.add_argument("--name", required=True, help="unique name (letters, digits, - _)")
        parser.add_argument(
            "--format", default=AUTO, help=f"{AUTO} (default), {', '.join(FORMATS)}"
        )
        parser.add_argument(
            "--split",
            default="0.8,0.1,0.1",
            help="train,validation,test shares, or four: train,validation,feedback,test such as "
            "0.7,0.1,0.1,0.1 (feedback prompts go to studies whose judgments may train); "
            "for hub:OWNER/NAME, a split name such as train "
            f"(default {DEFAULT_HUB_SPLIT}, then split by the default shares)",
        )
        parser.add_argument("--seed", type=int, default=0, help="seed of the split")
        parser.add_argument("--strict", action="store_true", help="refuse on warnings too")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument(
            "--tokenizer",
            help="count tokens with this base model's tokenizer (smollm2-135m or a model "
            "directory); default: a characters/4 estimate",
        )
        parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)
        parser.add_argument(
            "--prompt-field",
            "--prompt-column",
            dest="prompt_field",
            help="field (JSON, Parquet) or column (CSV) of the prompt; default: detected, "
            "'prompt' in CSV",
        )
        parser.add_argument(
            "--response-field",
            "--response-column",
            dest="response_field",
            help="field or column of the answer; default: detected, 'response' in CSV",
        )
        parser.add_argument(
            "--system-field", help="field or column of a system prompt; default 'system'"
        )
        parser.add_argument(
            "--messages-field",
            help="field holding the conversation as a list of role/content turns",
        )

    def handle(self, *args, **options) -> None:
        try:
            repo = hub_repo(options["path"])
            ratios, hub_split = self.parse_split(options["split"], hub=repo is not None)
        except (DatasetError, InvalidSplit) as error:
            raise CommandError(str(error), returncode=EXIT_UNUSABLE) from None
        path = Path(options["path"])
        if repo is None and not path.exists():
            raise CommandError(FILE_NOT_FOUND.format(path=path), returncode=EXIT_UNUSABLE)
        spec = options["tokenizer"]
        import_spec = ImportSpec(
            options=ReadOptions(
                format=options["format"],
                prompt_field=options["prompt_field"],
                response_field=options["response_field"],
                system_field=options["system_field"],
                messages_field=options["messages_field"],
            ),
            split=ratios,
            seed=options["seed"],
            strict=options["strict"],
            count_tokens=load_token_counter(spec) if spec else None,
            tokenizer=spec,
            max_tokens=options["max_tokens"],
        )
        name = options["name"]
        try:
            if repo is None:
                result = dataset_import(path=path, name=name, spec=import_spec)
            else:
                result = dataset_import_hub(
                    repo=repo, hub_split=hub_split, name=name, spec=import_spec
                )
        except (DatasetError, DatasetNameError, InvalidSplit) as error:
            raise CommandError(str(error), returncode=EXIT_UNUSABLE) from None
        if options["json"]:
            self.stdout.write(json.dumps(result.report(), ensure_ascii=False, indent=2))
        else:
            self.write_table(result)
        if not result.imported:
            raise CommandError(result.refused, returncode=EXIT_REFUSED)

    @staticmethod
    def parse_split(value: str, *, hub: bool) -> tuple[Ratios, str]:
        """(the shares, the hub split): ``--split`` holds shares, or for a hub dataset either
        shares (of its default split) or the name of the split to load."""
        if hub and not any(ch.isdigit() for ch in value):
            return DEFAULT_RATIOS, value.strip()
        try:
            return parse_ratios(value), DEFAULT_HUB_SPLIT
        except InvalidSplit:
            if value.strip().isidentifier():
                raise InvalidSplit(SPLIT_NAME_NEEDS_HUB.format(value=value)) from None
            raise

    def write_table(self, result: DatasetImportResult) -> None:
        prepared = result.prepared
        counts = " · ".join(f"{split} {n}" for split, n in result.counts.items())
        self.stdout.write(
            f"{result.name}: {len(prepared.examples)} examples, format {prepared.format}, "
            f"split {counts} ({prepared.split_source}), tokens by {prepared.tokenizer}"
            + (f", {prepared.pairs} preference pairs" if prepared.pairs else "")
        )
        if result.issues:
            shown = [format_lines(list(issue.lines)) for issue in result.issues]
            width = max(len(issue.code) for issue in result.issues)
            span = min(max(len(lines) for lines in shown), 40)
            self.stdout.write(f"\n{'severity':8}  {'code':{width}}  {'lines':{span}}  message")
            for issue, lines in zip(result.issues, shown, strict=True):
                self.stdout.write(
                    f"{issue.severity:8}  {issue.code:{width}}  {lines:{span}}  {issue.message}"
                )
        else:
            self.stdout.write("no lint issues")
        if result.imported:
            self.stdout.write(
                self.style.SUCCESS(f"\nimported {result.name!r} ({prepared.content_hash[:12]})")
            )
