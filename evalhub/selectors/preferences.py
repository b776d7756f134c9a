"""Reads for preference sets: a study's judgments as plain votes, the splits its prompts come
from, the sets themselves and their rows. Managers only: a set names no system, but its
provenance ties judgments to answers."""

from collections.abc import Iterator

from django.db.models import QuerySet

from evalhub import blinding
from evalhub.analysis.preferences import Vote
from evalhub.models import Adjudication, Choice, Comparison, Judgment, PreferenceSet, Study
from trainer.models import Example, Split


def study_votes(*, study: Study) -> list[Vote]:
    """Every judgment of the study as a vote in storage order (unblinded through
    ``evalhub.blinding``), in the order they were made; a skip names no verdict."""
    rows = (
        Judgment.objects.filter(assignment__comparison__study=study)
        .order_by("id")
        .values_list(
            "id",
            "assignment__comparison_id",
            "assignment__rater__username",
            "assignment__left_output_id",
            "assignment__comparison__output_a_id",
            "assignment__comparison__is_gold",
            "choice",
            "flagged",
            "correction",
        )
    )
    votes = []
    for judgment, comparison, rater, left, output_a, gold, choice, flagged, correction in rows:
        left_is_a = blinding.left_is_a(left_output=left, output_a=output_a)
        verdict = (
            None if choice == Choice.SKIP else blinding.unblind_choice(choice, left_is_a=left_is_a)
        )
        votes.append(
            Vote(
                judgment,
                comparison,
                rater,
                verdict,
                flagged=flagged,
                gold=gold,
                correction=bool(correction.strip()),
            )
        )
    return votes


def study_regular_comparisons(*, study: Study) -> QuerySet[Comparison]:
    """The study's comparisons that are not gold items, with their prompt and both outputs."""
    return (
        Comparison.objects.filter(study=study, is_gold=False)
        .select_related("prompt", "output_a", "output_b")
        .order_by("id")
    )


def study_adjudications(*, study: Study) -> dict[int, str]:
    """Each reviewer's final call on the study's comparisons, in storage order."""
    return dict(
        Adjudication.objects.filter(comparison__study=study).values_list("comparison_id", "verdict")
    )


def study_prompt_splits(*, study: Study) -> set[str]:
    """The splits the study's regular prompts come from; a prompt no example stands behind
    counts as test (nothing shows it may train)."""
    splits = (
        Comparison.objects.filter(study=study, is_gold=False)
        .values_list("prompt__example__split", flat=True)
        .distinct()
    )
    return {split or Split.TEST for split in splits}


def preference_set_list() -> QuerySet[PreferenceSet]:
    return PreferenceSet.objects.select_related("study", "dataset", "created_by").order_by(
        "name", "-version"
    )


def preference_set_rows(*, preference_set: PreferenceSet) -> QuerySet[Example]:
    """The set's rows in order: pairs (a rejected answer) and SFT rows from corrections."""
    return Example.objects.filter(dataset_id=preference_set.dataset_id).order_by("index")


PAIRS, MESSAGES = "pairs", "messages"
LAYOUTS = (PAIRS, MESSAGES)
BAD_LAYOUT = (
    "layout must be pairs (prompt, chosen, rejected) or messages (SFT rows); got {layout!r}"
)


def preference_set_records(*, preference_set: PreferenceSet, layout: str) -> Iterator[dict]:
    """The set's rows as JSONL records. ``pairs``: each pair in the conversational
    prompt/chosen/rejected layout that TRL's DPO trainer and ``import_dataset`` read.
    ``messages``: every chosen conversation and correction as an SFT row. Raises ValueError
    (``BAD_LAYOUT``) at once for another layout."""
    if layout not in LAYOUTS:
        raise ValueError(BAD_LAYOUT.format(layout=layout))
    return _records(preference_set_rows(preference_set=preference_set), layout)


def _records(rows: QuerySet[Example], layout: str) -> Iterator[dict]:
    for row in rows.iterator():
        if layout == MESSAGES:
            yield {"messages": row.messages}
        elif row.rejected:
            *prompt, chosen = row.messages
            rejected = {"role": "assistant", "content": row.rejected}
            yield {"prompt": prompt, "chosen": [chosen], "rejected": [rejected]}
