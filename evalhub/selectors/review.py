"""What a reviewer reads: the comparisons where raters split or one flagged it, each in the
reviewer's own blinded frame.

A reviewer sees a comparison as a rater sees an assignment: the prompt and two responses named
A (left) and B (right), with the side chosen by ``blinding.review_frame`` for this reviewer and
this comparison. Every rater's judgment is translated into that frame, so "A is better" means
the same response on every line of the page. Raters are named "Rater 1", "Rater 2", … in the
order they judged this comparison, so that a reviewer weighs what they said, not who said it.
Nothing here hands a template a model instance: only plain strings and numbers.
"""

from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from evalhub import blinding
from evalhub.models import (
    Adjudication,
    Assignment,
    Choice,
    Comparison,
    Judgment,
    Study,
    StudyStatus,
)
from evalhub.selectors.rating import Response

SPLIT = "raters split"
FLAGGED = "flagged"


@dataclass(frozen=True)
class Disputed:
    """A comparison in a reviewer's queue (``comparison`` stays out of templates)."""

    comparison: int
    token: str
    left_is_a: bool
    reasons: tuple[str, ...]
    judgments: int
    decided: bool


@dataclass(frozen=True)
class QueueEntry:
    token: str
    number: int
    reasons: str
    judgments: int
    decided: bool


@dataclass(frozen=True)
class ReviewStudy:
    pk: int
    name: str
    total: int
    decided: int


@dataclass(frozen=True)
class ReviewJudgment:
    rater: str  # "Rater 1", … in the order they judged this comparison
    choice: str  # in the reviewer's frame: "a" is the response shown as A
    comment: str
    flag_reason: str  # empty unless the rater flagged the item
    scores: tuple[tuple[str, float | None, float | None], ...]  # (criterion, A's, B's)


@dataclass(frozen=True)
class ReviewItem:
    token: str
    number: int
    total: int
    reasons: str
    messages: list[dict]
    reference: str  # empty unless the study shows references
    responses: tuple[Response, Response]
    judgments: tuple[ReviewJudgment, ...]
    choice: str  # the reviewer's standing final call in their frame, "" when none
    note: str


def _frame(comparison: int, reviewer: AbstractBaseUser) -> tuple[str, bool]:
    return blinding.review_frame(
        key=settings.SECRET_KEY.encode(), comparison=comparison, reviewer=reviewer.pk
    )


def disputed_comparisons(*, study: Study, reviewer: AbstractBaseUser) -> list[Disputed]:
    """The study's non-gold comparisons where the raters' verdicts differ or a judgment is
    flagged (a skip is one), and those already settled, in this reviewer's shuffled order.
    A reviewer never settles a comparison they were given to rate themselves."""
    rows = (
        Judgment.objects.filter(
            assignment__comparison__study=study, assignment__comparison__is_gold=False
        )
        .exclude(assignment__comparison__assignments__rater=reviewer)
        .values_list(
            "assignment__comparison_id",
            "assignment__left_output_id",
            "assignment__comparison__output_a_id",
            "choice",
            "flagged",
        )
    )
    verdicts: dict[int, set[str]] = defaultdict(set)
    flagged: dict[int, bool] = defaultdict(bool)
    counts: dict[int, int] = defaultdict(int)
    for cid, left, output_a, choice, is_flagged in rows.iterator(chunk_size=5000):
        counts[cid] += 1
        flagged[cid] |= is_flagged
        if choice != Choice.SKIP:
            left_is_a = blinding.left_is_a(left_output=left, output_a=output_a)
            verdicts[cid].add(blinding.unblind_choice(choice, left_is_a=left_is_a))
    decided = set(
        Adjudication.objects.filter(comparison__study=study)
        .exclude(comparison__assignments__rater=reviewer)
        .values_list("comparison_id", flat=True)
    )
    queue = []
    for cid in counts.keys() | decided:
        reasons = (SPLIT,) * (len(verdicts[cid]) > 1) + (FLAGGED,) * flagged[cid]
        if not reasons and cid not in decided:
            continue
        token, left_is_a = _frame(cid, reviewer)
        queue.append(Disputed(cid, token, left_is_a, reasons, counts[cid], cid in decided))
    return sorted(queue, key=lambda d: d.token)


def review_queue(*, study: Study, reviewer: AbstractBaseUser) -> list[QueueEntry]:
    return [
        QueueEntry(d.token, number, ", ".join(d.reasons), d.judgments, d.decided)
        for number, d in enumerate(disputed_comparisons(study=study, reviewer=reviewer), 1)
    ]


def review_studies(*, reviewer: AbstractBaseUser) -> list[ReviewStudy]:
    """Every study past its draft with something to settle, by name, with its queue's size."""
    studies = Study.objects.exclude(status=StudyStatus.DRAFT).filter(
        comparisons__assignments__judgment__isnull=False
    )
    result = [
        review_counts(study=s, reviewer=reviewer) for s in studies.distinct().order_by("name")
    ]
    return [counts for counts in result if counts.total]


def review_counts(*, study: Study, reviewer: AbstractBaseUser) -> ReviewStudy:
    """How many comparisons of the study ``reviewer`` could settle, and how many are settled."""
    queue = disputed_comparisons(study=study, reviewer=reviewer)
    return ReviewStudy(study.pk, study.name, len(queue), sum(d.decided for d in queue))


def review_find(*, queue: list[Disputed], token: str) -> Disputed | None:
    """The entry of ``queue`` (from :func:`disputed_comparisons`) that ``token`` addresses;
    None for any other token."""
    return next((d for d in queue if d.token == token), None)


def review_next(*, study: Study, reviewer: AbstractBaseUser) -> Disputed | None:
    """The first entry of the reviewer's queue not settled yet."""
    queue = disputed_comparisons(study=study, reviewer=reviewer)
    return next((d for d in queue if not d.decided), None)


def review_item(*, study: Study, queue: list[Disputed], disputed: Disputed) -> ReviewItem:
    """The blinded page of one disputed comparison of the reviewer's ``queue``, in their
    frame."""
    comparison = Comparison.objects.select_related("prompt", "output_a", "output_b").get(
        pk=disputed.comparison, study=study
    )
    frame = disputed.left_is_a
    left, right = blinding.sides(comparison.output_a, comparison.output_b, left_is_a=frame)
    assignments = (
        Assignment.objects.filter(comparison=comparison, judgment__isnull=False)
        .select_related("judgment")
        .order_by("judgment__created_at", "judgment__id")
    )
    judgments = tuple(
        _in_frame(number, a, output_a=comparison.output_a_id, frame=frame)
        for number, a in enumerate(assignments, 1)
    )
    adjudication = Adjudication.objects.filter(comparison=comparison).first()
    return ReviewItem(
        token=disputed.token,
        number=next(n for n, d in enumerate(queue, 1) if d.token == disputed.token),
        total=len(queue),
        reasons=", ".join(disputed.reasons),
        messages=comparison.prompt.messages,
        reference=comparison.prompt.reference if study.show_reference else "",
        responses=(Response("A", left.text), Response("B", right.text)),
        judgments=judgments,
        choice=blinding.blind_choice(adjudication.verdict, left_is_a=frame) if adjudication else "",
        note=adjudication.note if adjudication else "",
    )


def _in_frame(number: int, assignment: Assignment, *, output_a: int, frame: bool) -> ReviewJudgment:
    judgment = assignment.judgment
    rater_left_is_a = blinding.left_is_a(left_output=assignment.left_output_id, output_a=output_a)
    # Storage order first, then the reviewer's frame; a tie, both bad or a skip stays as it is.
    verdict = blinding.unblind_choice(judgment.choice, left_is_a=rater_left_is_a)
    choice = blinding.blind_choice(verdict, left_is_a=frame)
    scores = blinding.unblind_scores(judgment.criterion_scores, left_is_a=rater_left_is_a)
    return ReviewJudgment(
        rater=f"Rater {number}",
        choice=choice,
        comment=judgment.comment,
        flag_reason=judgment.flag_reason if judgment.flagged else "",
        scores=tuple(
            (name, *blinding.sides(a, b, left_is_a=frame)) for name, (a, b) in scores.items()
        ),
    )
