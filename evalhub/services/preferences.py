"""Building a preference set from a study's judgments: one chosen/rejected pair per comparison
its raters decided (``evalhub.analysis.preferences`` holds the rules), one SFT row per
correction, stored as a trainer dataset of kind preferences with where it came from.

A correction is the rater's own answer, written because neither answer shown was good enough:
unless ``correction_pairs`` is off it also makes a pair against each answer the rater saw (the
correction chosen), which is where DPO learns what the raters fixed, not only what they chose.

Only studies on prompts that may train are used: feedback prompts, or training prompts. Test
prompts decide and never train; validation prompts measure training (early stopping), so a
set built from them would train on what judges it.
"""

import re

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Max

from evalhub.analysis import preferences as rules
from evalhub.models import Comparison, Judgment, PreferenceSet, Study
from evalhub.selectors.preferences import (
    study_adjudications,
    study_prompt_splits,
    study_regular_comparisons,
    study_votes,
)
from evalhub.selectors.studies import study_gate, study_gated_raters
from trainer.datasets.normalise import message
from trainer.datasets.pipeline import Row
from trainer.models import Split
from trainer.services.datasets import DatasetNameError, dataset_create_from_rows

ERROR_TEST_PROMPTS = (
    "test prompts decide and never train: build preferences from a study on feedback prompts"
)
ERROR_VALIDATION_PROMPTS = (
    "validation prompts measure training (early stopping) and never train: build preferences "
    "from a study on feedback prompts"
)
ERROR_NO_PAIR = (
    "study {study!r} has no decided pair yet: every comparison was left out ({reasons}); "
    "collect more judgments or adjudicate the split ones"
)
ERROR_NAME = (
    "a preference set name must be 1-80 letters, digits, '-' or '_' (it names the dataset "
    "too); got {name!r}"
)
ERROR_SHARE = "the validation share must be at least 0 and at most 0.5; got {share}"
ERROR_DATASET = "cannot store the set's dataset: {detail}"
ERROR_VERSION_TAKEN = "{name} v{version} was built at the same moment; build it again"

CORRECTION_PAIRS = (
    "a correction is chosen over each answer its rater saw (the same text or an empty answer "
    "makes no pair)"
)

ALLOWED_SPLITS = (Split.FEEDBACK, Split.TRAIN)
MAX_VALIDATION_SHARE = 0.5
_NAME = re.compile(r"^[-a-zA-Z0-9_]{1,80}$")
MAJORITY = (
    "a comparison makes a pair when more than half of its counted judgments name one answer "
    "better; a reviewer's final call replaces the raters' majority"
)


class PreferenceError(ValueError):
    """The set cannot be built; the message is one of the constants above, filled in."""


def check_study_may_train(*, study: Study) -> set[str]:
    """The splits of the study's prompts, or ``PreferenceError`` when any may not train."""
    splits = study_prompt_splits(study=study)
    if Split.TEST in splits:
        raise PreferenceError(ERROR_TEST_PROMPTS)
    if Split.VALIDATION in splits:
        raise PreferenceError(ERROR_VALIDATION_PROMPTS)
    return splits


@transaction.atomic
def preference_set_build(
    *,
    study: Study,
    name: str,
    created_by: AbstractBaseUser | None = None,
    validation_share: float = 0.1,
    seed: int = 0,
    correction_pairs: bool = True,
) -> PreferenceSet:
    """Build the next version of the set ``name`` from ``study``; nothing is stored when it is
    refused (``PreferenceError``)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise PreferenceError(ERROR_NAME.format(name=name))
    if not 0 <= validation_share <= MAX_VALIDATION_SHARE:
        raise PreferenceError(ERROR_SHARE.format(share=validation_share))
    splits = check_study_may_train(study=study)
    comparisons = {c.pk: c for c in study_regular_comparisons(study=study)}
    gated = study_gated_raters(study=study)
    votes = study_votes(study=study)
    outcome = rules.decide(
        votes,
        comparisons=list(comparisons),
        adjudications=study_adjudications(study=study),
        gated=set(gated),
        unusable={pk for pk, c in comparisons.items() if not _pairable(c)},
    )
    if not outcome.decisions:
        reasons = ", ".join(f"{rule} {n}" for rule, n in outcome.left_out.items() if n) or "none"
        raise PreferenceError(ERROR_NO_PAIR.format(study=study.name, reasons=reasons))

    rows = [_pair_row(comparisons[d.comparison], d.winner) for d in outcome.decisions]
    sft_rows, fixed_pairs = _correction_rows(
        outcome.corrections, comparisons, pairs=correction_pairs
    )
    rows += sft_rows + fixed_pairs
    version = (
        PreferenceSet.objects.filter(name=name).aggregate(latest=Max("version"))["latest"] or 0
    ) + 1
    used = sorted({j for d in outcome.decisions for j in d.judgments} | set(outcome.corrections))
    rule_record = _rules(study, outcome, gated, splits, validation_share, seed)
    rule_record["correction_pairs"] = {
        "on": correction_pairs,
        "count": len(fixed_pairs),
        "description": CORRECTION_PAIRS,
    }
    try:
        dataset = dataset_create_from_rows(
            name=f"{name}-v{version}",
            rows=rows,
            provenance={
                "made_by": "evalhub preference set",
                "preference_set": {"name": name, "version": version},
                "study": {"id": study.pk, "name": study.name},
                "prompt_examples": sorted(
                    {c.prompt.example_id for c in comparisons.values() if c.prompt.example_id}
                ),
                "judgments": len(used),
                "rules": rule_record,
            },
            validation_share=validation_share,
            seed=seed,
            created_by=created_by,
        )
        with transaction.atomic():
            preference_set = PreferenceSet.objects.create(
                name=name,
                version=version,
                study=study,
                dataset=dataset,
                rules=rule_record,
                pair_count=len(outcome.decisions) + len(fixed_pairs),
                sft_count=len(outcome.corrections),
                created_by=created_by,
            )
    except DatasetNameError as error:
        raise PreferenceError(ERROR_DATASET.format(detail=error)) from None
    except IntegrityError:
        raise PreferenceError(ERROR_VERSION_TAKEN.format(name=name, version=version)) from None
    preference_set.judgments.set(used)
    return preference_set


def _pairable(comparison: Comparison) -> bool:
    first, second = comparison.output_a.text.strip(), comparison.output_b.text.strip()
    return bool(first) and bool(second) and first != second


def _pair_row(comparison: Comparison, winner: str) -> Row:
    """The prompt with the better answer as the assistant's turn; the other one rejected."""
    a, b = comparison.output_a.text, comparison.output_b.text
    chosen, rejected = (a, b) if winner == rules.A else (b, a)
    return Row([*comparison.prompt.messages, message("assistant", chosen)], rejected)


def _correction_rows(
    judgments: list[int], comparisons: dict[int, Comparison], *, pairs: bool
) -> tuple[list[Row], list[Row]]:
    """(one SFT row per correction: the prompt with the rater's own answer; with ``pairs``,
    that answer chosen over each answer the rater saw, unless it is the same text)."""
    found = Judgment.objects.filter(pk__in=judgments).values_list(
        "pk", "assignment__comparison_id", "correction"
    )
    by_pk = {pk: (comparison, text) for pk, comparison, text in found}
    sft, fixed = [], []
    for pk in judgments:
        comparison = comparisons[by_pk[pk][0]]
        answer = by_pk[pk][1].strip()
        conversation = [*comparison.prompt.messages, message("assistant", answer)]
        sft.append(Row(conversation))
        if pairs:
            shown = (comparison.output_a.text, comparison.output_b.text)
            fixed += [Row(conversation, text) for text in shown if text.strip() not in ("", answer)]
    return sft, fixed


def _rules(
    study: Study,
    outcome: rules.Outcome,
    gated: dict[str, list[str]],
    splits: set[str],
    validation_share: float,
    seed: int,
) -> dict:
    """What ``PreferenceSet.rules`` keeps: the rules applied, what each left out, and who."""
    gate = study_gate(study=study)
    return {
        "majority": MAJORITY,
        "prompt_splits": sorted(splits),
        "gate": {
            "min_gold_accuracy": gate.min_gold_accuracy,
            "min_gold_judged": gate.min_gold_judged,
            "min_median_seconds": gate.min_median_seconds,
        },
        "gated_raters": gated,
        "raters": outcome.raters,
        "adjudicated": sum(d.adjudicated for d in outcome.decisions),
        "left_out": [
            {
                "rule": rule,
                "unit": unit,
                "description": description,
                "count": outcome.left_out[rule],
            }
            for rule, (unit, description) in rules.RULES.items()
        ],
        "validation_share": validation_share,
        "seed": seed,
    }
