"""What a rater may read: their own assignments, their progress, and the blinded item.

``rating_item`` is the only way the rating page gets at the texts: it returns plain strings
labelled A (left) and B (right), so a template cannot reach a system, a run or an output id.
"""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, QuerySet

from evalhub.models import Assignment, Judgment, Study, StudyStatus


@dataclass(frozen=True)
class Progress:
    done: int
    total: int

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def finished(self) -> bool:
        return self.done >= self.total


@dataclass(frozen=True)
class Response:
    label: str  # "A" (left) or "B" (right): the only names a rater sees
    text: str


@dataclass(frozen=True)
class RatingItem:
    token: str
    number: int  # 1-based place in the rater's queue
    total: int
    messages: list[dict]  # the prompt conversation, ending with a user turn
    reference: str  # empty unless the study shows references
    responses: tuple[Response, Response]
    judgment: Judgment | None
    progress: Progress  # the rater's in this study


def rater_studies(*, rater: AbstractBaseUser) -> QuerySet[Study]:
    """Open and paused studies where ``rater`` has work, with their own counts only."""
    mine = Q(comparisons__assignments__rater=rater)
    return (
        Study.objects.filter(mine, status__in=[StudyStatus.OPEN, StudyStatus.PAUSED])
        .annotate(
            assigned=Count("comparisons__assignments", filter=mine, distinct=True),
            done=Count(
                "comparisons__assignments",
                filter=mine & Q(comparisons__assignments__judgment__isnull=False),
                distinct=True,
            ),
        )
        .order_by("name")
    )


def rater_assignments(*, study: Study, rater: AbstractBaseUser) -> QuerySet[Assignment]:
    """The rater's queue in this study, in their (shuffled) order."""
    return (
        Assignment.objects.filter(comparison__study=study, rater=rater)
        .select_related("judgment", "comparison__prompt")
        .order_by("position")
    )


def rater_assignment(*, token: str, rater: AbstractBaseUser) -> Assignment | None:
    """The rater's own assignment for ``token``; None for anyone else's or an unknown token."""
    return (
        Assignment.objects.filter(token=token, rater=rater)
        .select_related("comparison__study")
        .first()
    )


def rater_next_assignment(*, study: Study, rater: AbstractBaseUser) -> Assignment | None:
    return (
        Assignment.objects.filter(comparison__study=study, rater=rater, judgment__isnull=True)
        .select_related("comparison__study")
        .order_by("position")
        .first()
    )


def rater_progress(*, study: Study, rater: AbstractBaseUser) -> Progress:
    counts = _rater_counts(study=study, rater=rater)
    return Progress(done=counts["done"], total=counts["total"])


def _rater_counts(*, study: Study, rater: AbstractBaseUser | int, **more: Count) -> dict:
    """In one query: the rater's assignments in the study, how many are judged, and ``more``."""
    return Assignment.objects.filter(comparison__study=study, rater=rater).aggregate(
        total=Count("id"), done=Count("id", filter=Q(judgment__isnull=False)), **more
    )


def rating_item(*, assignment: Assignment) -> RatingItem:
    """The blinded view of one assignment: both texts take exactly the same path."""
    assignment = Assignment.objects.select_related(
        "comparison__study",
        "comparison__prompt",
        "comparison__output_a",
        "comparison__output_b",
        "judgment",
    ).get(pk=assignment.pk)
    comparison = assignment.comparison
    left, right = assignment.sides()
    place = _rater_counts(
        study=comparison.study,
        rater=assignment.rater_id,
        number=Count("id", filter=Q(position__lte=assignment.position)),
    )
    return RatingItem(
        token=assignment.token,
        number=place["number"],
        total=place["total"],
        messages=[
            {"role": m.get("role", "user"), "content": str(m.get("content", ""))}
            for m in comparison.prompt.messages
        ],
        reference=comparison.prompt.reference if comparison.study.show_reference else "",
        responses=(Response("A", left.text), Response("B", right.text)),
        judgment=getattr(assignment, "judgment", None),
        progress=Progress(done=place["done"], total=place["total"]),
    )
