"""Writing judgments: one per assignment, revised in place while the study is open.

Double clicks, a second tab or the back button all end here; the assignment row is locked for
the transaction and the Judgment is one-to-one with it, so a repeated submit can only update.
"""

from collections.abc import Mapping

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from evalhub.models import Assignment, Choice, Judgment, StudyStatus
from evalhub.services.studies import study_stop_if_decided

ERROR_NOT_YOUR_ASSIGNMENT = "This item is not assigned to you."
ERROR_STUDY_NOT_OPEN = "This study is not open for rating right now."
ERROR_CHOICE = "Choose one: A better, B better, Tie or Both bad."
ERROR_SKIP_REASON = "Flag reason: say why you skip this item, e.g. the prompt is cut off."
ERROR_UNKNOWN_CRITERION = "Unknown criterion {name!r}."
ERROR_SCORE = "Scores are whole numbers from 1 to 5; got {value!r} for {name} ({side})."
ERROR_COMMENT_LONG = "Comments are limited to {limit} characters."
ERROR_FLAG_REASON_LONG = "The flag reason is limited to {limit} characters."
ERROR_CORRECTION_LONG = "A better answer is limited to {limit:,} characters; yours has {length:,}."

NOT_YOURS = "not_yours"
NOT_OPEN = "not_open"
INVALID = "invalid"

MAX_COMMENT = 5000
MAX_FLAG_REASON = 200  # Judgment.flag_reason's width
# A rater's own answer to the prompt: room for a long answer, not for a pasted document.
MAX_CORRECTION = 10_000
# A tab left open overnight is not an hour of work: longer times are recorded as this cap.
MAX_TIME_ON_TASK_MS = 60 * 60 * 1000


class JudgmentError(Exception):
    """A refused submission; ``code`` is NOT_YOURS, NOT_OPEN or INVALID."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


def _clean_scores(
    scores: Mapping[str, Mapping[str, int]] | None, criteria: list[str]
) -> dict[str, dict[str, int]]:
    cleaned: dict[str, dict[str, int]] = {}
    for name, sides in (scores or {}).items():
        if name not in criteria:
            raise JudgmentError(ERROR_UNKNOWN_CRITERION.format(name=name), INVALID)
        for side, value in sides.items():
            valid = side in ("a", "b") and type(value) is int and 1 <= value <= 5
            if not valid:
                raise JudgmentError(ERROR_SCORE.format(value=value, name=name, side=side), INVALID)
        if sides:
            cleaned[name] = dict(sorted(sides.items()))
    return cleaned


def correction_too_long(correction: str) -> str:
    """The refusal of a better answer over the limit, with its length (the form, the API and
    this service say it alike)."""
    return ERROR_CORRECTION_LONG.format(limit=MAX_CORRECTION, length=len(correction))


def _cap_time(time_on_task_ms: int | None) -> int | None:
    if time_on_task_ms is None or time_on_task_ms < 0:
        return None
    return min(time_on_task_ms, MAX_TIME_ON_TASK_MS)


@transaction.atomic
def judgment_submit(
    *,
    assignment: Assignment,
    rater: AbstractBaseUser,
    choice: str,
    criterion_scores: Mapping[str, Mapping[str, int]] | None = None,
    comment: str = "",
    correction: str = "",
    flagged: bool = False,
    flag_reason: str = "",
    time_on_task_ms: int | None = None,
) -> Judgment:
    """Record or revise ``rater``'s verdict on ``assignment``; A means the left response.

    A submit identical to the stored judgment changes nothing (a double click is not a
    revision); a different one updates it in place and counts a revision. Time on task keeps
    the first submit's value: it measures how long the first verdict took.
    A skip (``Choice.SKIP``) chooses no side: it is always flagged and needs a flag reason.
    ``correction`` is the rater's own better answer, optional; a skip keeps one it is sent
    (the rules of a preference set decide what a skipped item's answer is worth).
    A study set to stop by itself is paused when this judgment decides it.
    Raises ``JudgmentError`` (NOT_YOURS, NOT_OPEN or INVALID).
    """
    locked = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("comparison__study")
        .get(pk=assignment.pk)
    )
    if locked.rater_id != rater.pk:
        raise JudgmentError(ERROR_NOT_YOUR_ASSIGNMENT, NOT_YOURS)
    study = locked.comparison.study
    if study.status != StudyStatus.OPEN:
        raise JudgmentError(ERROR_STUDY_NOT_OPEN, NOT_OPEN)
    if choice not in Choice.values:
        raise JudgmentError(ERROR_CHOICE, INVALID)
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise JudgmentError(ERROR_COMMENT_LONG.format(limit=MAX_COMMENT), INVALID)
    correction = correction.strip()
    if len(correction) > MAX_CORRECTION:
        raise JudgmentError(correction_too_long(correction), INVALID)
    if choice == Choice.SKIP:
        flagged = True
        if not flag_reason.strip():
            raise JudgmentError(ERROR_SKIP_REASON, INVALID)
    flag_reason = flag_reason.strip() if flagged else ""
    if len(flag_reason) > MAX_FLAG_REASON:
        raise JudgmentError(ERROR_FLAG_REASON_LONG.format(limit=MAX_FLAG_REASON), INVALID)

    values = {
        "choice": choice,
        "criterion_scores": _clean_scores(criterion_scores, list(study.criteria)),
        "comment": comment,
        "correction": correction,
        "flagged": flagged,
        "flag_reason": flag_reason,
    }
    judgment = Judgment.objects.filter(assignment=locked).first()
    if judgment is None:
        judgment = Judgment.objects.create(
            assignment=locked, time_on_task_ms=_cap_time(time_on_task_ms), **values
        )
    elif all(getattr(judgment, field) == value for field, value in values.items()):
        return judgment
    else:
        for field, value in values.items():
            setattr(judgment, field, value)
        judgment.revisions += 1
        judgment.save()
    study_stop_if_decided(study=study)
    return judgment
