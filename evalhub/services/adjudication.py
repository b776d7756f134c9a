"""Writing a reviewer's final call on a disputed comparison: one per comparison, revised in
place, stored beside the raters' judgments and never over them."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from evalhub import blinding
from evalhub.models import Adjudication, Comparison, Verdict

ERROR_FINAL_CALL = "Final call: choose one: A better, B better, Tie or Both bad."
ERROR_NOTE_LONG = "Note: it is limited to {limit} characters."
MAX_NOTE = 5000


class AdjudicationError(ValueError):
    """A refused final call; the message names the field."""


@transaction.atomic
def adjudication_submit(
    *,
    comparison: Comparison,
    reviewer: AbstractBaseUser,
    choice: str,
    left_is_a: bool,
    note: str = "",
) -> Adjudication:
    """Record ``reviewer``'s final call ``choice`` ("a" = the response they saw as A, "b",
    "tie" or "both_bad") on ``comparison``, seen with ``output_a`` on the left when
    ``left_is_a``. A later call by anyone replaces it and counts a revision."""
    if choice not in Verdict.values:
        raise AdjudicationError(ERROR_FINAL_CALL)
    if len(note) > MAX_NOTE:
        raise AdjudicationError(ERROR_NOTE_LONG.format(limit=MAX_NOTE))
    comparison = Comparison.objects.select_for_update().get(pk=comparison.pk)
    left = comparison.output_a_id if left_is_a else comparison.output_b_id
    values = {
        "reviewer": reviewer,
        "verdict": blinding.unblind_choice(choice, left_is_a=left_is_a),
        "left_output_id": left,
        "note": note.strip(),
    }
    adjudication = Adjudication.objects.filter(comparison=comparison).first()
    if adjudication is None:
        return Adjudication.objects.create(comparison=comparison, **values)
    for field, value in values.items():
        setattr(adjudication, field, value)
    adjudication.revisions += 1
    adjudication.save()
    return adjudication
