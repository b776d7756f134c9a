"""Evaluation prompts: one Prompt per example of a dataset's split, the conversation up to the
last user turn with the held-out answer as its reference."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction

from evalhub.models import Prompt
from evalhub.selectors.outputs import OutputsError
from trainer.models import Dataset, Split

BAD_SPLIT = "split must be one of train, validation, feedback, test; got {split!r}"


def split_conversation(messages: Sequence[dict]) -> tuple[list[dict], str] | None:
    """(conversation up to the last user turn, the assistant answer after it) or None when the
    conversation has no user turn. The reference is "" when no assistant turn follows."""
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if not users:
        return None
    last_user = users[-1]
    answers = [m for m in messages[last_user + 1 :] if m.get("role") == "assistant"]
    return list(messages[: last_user + 1]), (answers[-1]["content"] if answers else "")


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
