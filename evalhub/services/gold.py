"""Gold comparisons: pairs with a known better answer, read from JSONL and mixed in unseen.

One line per item: ``{"prompt": text, "better": text, "worse": text[, "reference": text]}``.
Each way in (a file, an upload, the API's list) parses its input into ``GoldItem`` values with
the reader for it here; ``study_create`` takes those.
"""

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from evalhub.models import (
    GOLD_KINDS,
    Comparison,
    GoldAnswer,
    Output,
    Prompt,
    Study,
    System,
    SystemKind,
)

ERROR_GOLD_LINE = "{source}, line {line}: {problem}"
ERROR_GOLD_UNREADABLE = "Cannot read the gold file {path}: {reason}."
ERROR_GOLD_EMPTY = "{source} holds no gold comparison."
GOLD_NOT_JSON = "not valid JSON ({detail})"
GOLD_NOT_OBJECT = 'expected an object with "prompt", "better" and "worse"'
GOLD_FIELD = 'field "{field}" must be a non-empty string'
GOLD_SAME = '"better" and "worse" are the same text'
GOLD_NEEDS_REFERENCE = 'the study shows reference answers, so "reference" is required here'

# The labels of the two gold systems (one of each gold kind), for people.
GOLD_SYSTEM_LABELS = {
    SystemKind.GOLD_BETTER: ("gold:better", "Known better gold answers"),
    SystemKind.GOLD_WORSE: ("gold:worse", "Known worse gold answers"),
}


class GoldError(ValueError):
    """Gold items that cannot be used; the message names the file (or list) and the line."""


@dataclass(frozen=True)
class GoldItem:
    prompt: str
    better: str
    worse: str
    reference: str = ""


def gold_read(
    lines: Iterable[str], *, source: str = "gold file", require_reference: bool = False
) -> list[GoldItem]:
    """Parse gold JSONL: ``{"prompt", "better", "worse"[, "reference"]}`` per line.

    A study that shows reference answers needs one on gold items too, or they would stand out.
    """
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problem = GOLD_NOT_JSON.format(detail=exc.msg)
            message = ERROR_GOLD_LINE.format(source=source, line=number, problem=problem)
            raise GoldError(message) from exc
        items.append(_gold_item(record, require_reference, source, number))
    if not items:
        raise GoldError(ERROR_GOLD_EMPTY.format(source=source))
    return items


def gold_load(path: str | PathLike, *, require_reference: bool = False) -> list[GoldItem]:
    """Gold items from a JSONL file; a file that cannot be read is a ``GoldError`` too."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as lines:
            return gold_read(lines, source=str(path), require_reference=require_reference)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise GoldError(ERROR_GOLD_UNREADABLE.format(path=path, reason=reason)) from exc


def gold_parse(
    records: Sequence[object], *, source: str = "gold", require_reference: bool = False
) -> list[GoldItem]:
    """Gold items from records already decoded (the API's JSON list), numbered from 1."""
    items = [
        _gold_item(record, require_reference, source, number)
        for number, record in enumerate(records, start=1)
    ]
    if not items:
        raise GoldError(ERROR_GOLD_EMPTY.format(source=source))
    return items


def _gold_item(record: object, require_reference: bool, source: str, number: int) -> GoldItem:
    def fail(problem: str) -> GoldError:
        return GoldError(ERROR_GOLD_LINE.format(source=source, line=number, problem=problem))

    if not isinstance(record, dict):
        raise fail(GOLD_NOT_OBJECT)
    for field in ("prompt", "better", "worse"):
        if not isinstance(record.get(field), str) or not record[field].strip():
            raise fail(GOLD_FIELD.format(field=field))
    reference = record.get("reference", "")
    if not isinstance(reference, str):
        raise fail(GOLD_FIELD.format(field="reference"))
    if record["better"].strip() == record["worse"].strip():
        raise fail(GOLD_SAME)
    if require_reference and not reference.strip():
        raise fail(GOLD_NEEDS_REFERENCE)
    return GoldItem(record["prompt"], record["better"], record["worse"], reference)


def gold_system(kind: str) -> System:
    """The one system of a gold kind, created on first use."""
    name, description = GOLD_SYSTEM_LABELS[kind]
    system, _ = System.objects.get_or_create(
        kind=kind, defaults={"name": name, "description": description}
    )
    return system


def gold_comparisons_create(
    *, study: Study, items: list[GoldItem], dataset_id: int, rng: random.Random
) -> list[Comparison]:
    """Store each gold item as a prompt of ``dataset_id`` (no example) with a better and a
    worse output under the two reserved gold systems. Runs inside ``study_create``'s
    transaction."""
    better_system, worse_system = (gold_system(kind) for kind in GOLD_KINDS)
    comparisons = []
    for item in items:
        prompt = Prompt.objects.create(
            dataset_id=dataset_id,
            messages=[{"role": "user", "content": item.prompt}],
            reference=item.reference,
        )
        better = Output.objects.create(system=better_system, prompt=prompt, text=item.better)
        worse = Output.objects.create(system=worse_system, prompt=prompt, text=item.worse)
        # The stored order is random too, so that output_a is not always the right answer.
        better_first = rng.random() < 0.5
        comparisons.append(
            Comparison(
                study=study,
                prompt=prompt,
                output_a=better if better_first else worse,
                output_b=worse if better_first else better,
                is_gold=True,
                gold_answer=GoldAnswer.A if better_first else GoldAnswer.B,
            )
        )
    return Comparison.objects.bulk_create(comparisons)
