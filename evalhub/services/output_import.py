"""Outputs produced elsewhere (any model, any tool) brought in as an "imported" System.

One JSON object a line: ``{"prompt_id": 12, "output": "..."}`` or ``{"prompt": "<last user turn>",
"output": "..."}``, optionally with ``token_count`` and ``latency_ms``. Every line is checked
before anything is written, every problem is reported with its line number, and the whole file
goes in one transaction: either all of it is imported or nothing is.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from evalhub.metrics import EMPTY_FLAG
from evalhub.models import Output, Prompt
from evalhub.selectors.outputs import OutputsError, dataset_get, evaluation_prompts
from evalhub.services.prompts import prompts_create_from_split
from evalhub.services.systems import outputs_in_study_check, system_imported_get_or_create
from trainer.models import Split

FILE_UNREADABLE = "cannot read {path}: {reason}"
FILE_EMPTY = "{path} has no outputs"
LINE_NOT_JSON = "line {line}: not valid JSON ({reason})"
LINE_NOT_OBJECT = "line {line}: expected a JSON object"
LINE_NO_OUTPUT = "line {line}: 'output' is missing or not a string"
LINE_NO_PROMPT = "line {line}: give 'prompt_id' or 'prompt'"
LINE_UNKNOWN_PROMPT_ID = "line {line}: prompt_id {value!r} is not a {split} prompt of {dataset!r}"
LINE_UNKNOWN_PROMPT = "line {line}: no {split} prompt of {dataset!r} has this text"
LINE_AMBIGUOUS_PROMPT = "line {line}: {count} prompts have this text; use prompt_id"
LINE_DUPLICATE = "line {line}: prompt {prompt_id} was already given on line {first}"
LINE_BAD_NUMBER = "line {line}: {field!r} must be a non-negative number"
TOO_MANY_ERRORS = "… and {count} more"
MAX_ERRORS_SHOWN = 20


@dataclass(frozen=True)
class ImportReport:
    system: str
    created: int
    updated: int
    unchanged: int


@dataclass(frozen=True)
class _Row:
    line: int
    prompt: Prompt
    text: str
    token_count: int | None
    latency_ms: float | None


def _read_lines(path: Path) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise OutputsError(FILE_UNREADABLE.format(path=path, reason=error)) from error


def _number(record: dict, field: str, line: int, errors: list[str]) -> float | None:
    value = record.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        errors.append(LINE_BAD_NUMBER.format(line=line, field=field))
        return None
    return value


def _parse(lines: list[str], prompts: list[Prompt], where: dict) -> tuple[list[_Row], list[str]]:
    by_id = {p.pk: p for p in prompts}
    by_text: dict[str, list[Prompt]] = {}
    for prompt in prompts:
        by_text.setdefault(prompt.text.strip(), []).append(prompt)
    rows, errors, first_line = [], [], {}
    for line, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as error:
            errors.append(LINE_NOT_JSON.format(line=line, reason=error.msg))
            continue
        if not isinstance(record, dict):
            errors.append(LINE_NOT_OBJECT.format(line=line))
            continue
        text = record.get("output")
        if not isinstance(text, str):
            errors.append(LINE_NO_OUTPUT.format(line=line))
        if "prompt_id" in record:
            prompt = by_id.get(record["prompt_id"]) if type(record["prompt_id"]) is int else None
            if prompt is None:
                errors.append(
                    LINE_UNKNOWN_PROMPT_ID.format(line=line, value=record["prompt_id"], **where)
                )
        elif isinstance(record.get("prompt"), str):
            matches = by_text.get(record["prompt"].strip(), [])
            prompt = matches[0] if len(matches) == 1 else None
            if not matches:
                errors.append(LINE_UNKNOWN_PROMPT.format(line=line, **where))
            elif len(matches) > 1:
                errors.append(LINE_AMBIGUOUS_PROMPT.format(line=line, count=len(matches)))
        else:
            prompt = None
            errors.append(LINE_NO_PROMPT.format(line=line))
        token_count = _number(record, "token_count", line, errors)
        latency_ms = _number(record, "latency_ms", line, errors)
        if prompt is None or not isinstance(text, str):
            continue
        if prompt.pk in first_line:
            errors.append(
                LINE_DUPLICATE.format(line=line, prompt_id=prompt.pk, first=first_line[prompt.pk])
            )
            continue
        first_line[prompt.pk] = line
        count = int(token_count) if token_count is not None else None
        rows.append(_Row(line, prompt, text, count, latency_ms))
    return rows, errors


@transaction.atomic
def outputs_import(
    *, path: Path, system_name: str, dataset_name: str, split: str = Split.TEST
) -> ImportReport:
    """Import a JSONL file of outputs for the dataset's split prompts into an imported System.

    Re-importing is idempotent: an output with the same text is left as it is; a changed text
    replaces the stored one and drops its metrics (refused if the output is part of a study).
    """
    lines = _read_lines(path)
    dataset = dataset_get(name=dataset_name)
    prompts_create_from_split(dataset=dataset, split=split)
    prompts = list(evaluation_prompts(dataset=dataset, split=split))
    rows, errors = _parse(lines, prompts, {"split": split, "dataset": dataset.name})
    if errors:
        shown = errors[:MAX_ERRORS_SHOWN]
        if len(errors) > MAX_ERRORS_SHOWN:
            shown.append(TOO_MANY_ERRORS.format(count=len(errors) - MAX_ERRORS_SHOWN))
        raise OutputsError("\n".join(shown))
    if not rows:
        raise OutputsError(FILE_EMPTY.format(path=path))

    system = system_imported_get_or_create(
        name=system_name, description=f"imported from {Path(path).name}"
    )
    existing = {o.prompt_id: o for o in Output.objects.filter(system=system)}
    changed = [r for r in rows if r.prompt.pk in existing and existing[r.prompt.pk].text != r.text]
    outputs_in_study_check(
        system, Output.objects.filter(pk__in=[existing[r.prompt.pk].pk for r in changed])
    )
    created = updated = 0
    for row in rows:
        fields = {
            "text": row.text,
            "token_count": row.token_count,
            "latency_ms": row.latency_ms,
            "metrics": {},
            "metrics_encoder": "",
            "flags": [] if row.text.strip() else [EMPTY_FLAG],
        }
        output = existing.get(row.prompt.pk)
        if output is None:
            Output.objects.create(system=system, prompt=row.prompt, **fields)
            created += 1
        elif output.text != row.text:
            Output.objects.filter(pk=output.pk).update(**fields)
            updated += 1
    return ImportReport(
        system=system.name,
        created=created,
        updated=updated,
        unchanged=len(rows) - created - updated,
    )
