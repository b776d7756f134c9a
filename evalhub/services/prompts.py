"""Evaluation prompts: one Prompt per example of a dataset's split, the conversation up to the
last user turn with the held-out answer as its reference."""

from dataclasses import dataclass

from django.db import transaction

from evalhub.models import Prompt
from evalhub.selectors.outputs import OutputsError
from trainer.datasets.normalise import split_conversation
from trainer.models import Dataset, Split

BAD_SPLIT = "split must be one of train, validation, feedback, test; got {split!r}"


@dataclass(frozen=True)
class PromptSync:
    created: int
    existing: int
    without_user_turn: int


@transaction.atomic
def prompts_create_from_split(*, dataset: Dataset, split: str = Split.TEST) -> PromptSync:
    """One Prompt per example of the split; examples that already have one are left alone."""
    if split not in Split.values:
        raise OutputsError(BAD_SPLIT.format(split=split))
    done = set(
        Prompt.objects.filter(dataset=dataset, example__isnull=False).values_list(
            "example_id", flat=True
        )
    )
    new, existing, skipped = [], 0, 0
    for example in dataset.examples.filter(split=split).order_by("index"):
        if example.pk in done:
            existing += 1
            continue
        parts = split_conversation(example.messages)
        if parts is None:
            skipped += 1
            continue
        messages, reference = parts
        new.append(Prompt(dataset=dataset, example=example, messages=messages, reference=reference))
    # ignore_conflicts: a concurrent run creating the same prompts is not an error.
    Prompt.objects.bulk_create(new, ignore_conflicts=True)
    return PromptSync(created=len(new), existing=existing, without_user_turn=skipped)
