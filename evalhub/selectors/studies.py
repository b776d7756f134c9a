"""What managers read about a study: counts, per-rater progress, gold accuracy, time, flags."""

import statistics
from collections import defaultdict
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, QuerySet

from evalhub.blinding import unblind_choice
from evalhub.models import Assignment, Comparison, Judgment, Study
from evalhub.roles import EXPERT_GROUP


@dataclass(frozen=True)
class StudyCounts:
    comparisons: int
    gold: int
    assignments: int
    judged: int
    raters: int


@dataclass(frozen=True)
class RaterStats:
    rater: AbstractBaseUser
    assigned: int
    done: int
    gold_judged: int
    gold_correct: int
    median_time_ms: float | None
    flagged: int

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.assigned) if self.assigned else 0

    @property
    def median_time_s(self) -> float | None:
        return self.median_time_ms / 1000 if self.median_time_ms is not None else None

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_judged if self.gold_judged else None


def gold_is_correct(*, choice: str, left_is_a: bool, gold_answer: str) -> bool:
    """Whether a rater's choice on a gold comparison names the known better answer."""
    return unblind_choice(choice, left_is_a=left_is_a) == gold_answer


def study_counts(*, study: Study) -> StudyCounts:
    comparisons = Comparison.objects.filter(study=study).aggregate(
        total=Count("id"), gold=Count("id", filter=Q(is_gold=True))
    )
    assignments = Assignment.objects.filter(comparison__study=study).aggregate(
        total=Count("id"),
        judged=Count("id", filter=Q(judgment__isnull=False)),
        raters=Count("rater", distinct=True),
    )
    return StudyCounts(
        comparisons=comparisons["total"],
        gold=comparisons["gold"],
        assignments=assignments["total"],
        judged=assignments["judged"],
        raters=assignments["raters"],
    )


def study_rater_stats(*, study: Study) -> list[RaterStats]:
    """One row per rater: progress, gold accuracy and median time on task."""
    assignments = (
        Assignment.objects.filter(comparison__study=study)
        .select_related("rater", "comparison", "judgment")
        .order_by("rater__username", "position")
    )
    rows: dict[int, dict] = {}
    times: dict[int, list[int]] = defaultdict(list)
    for a in assignments:
        row = rows.setdefault(
            a.rater_id,
            {
                "rater": a.rater,
                "assigned": 0,
                "done": 0,
                "gold_judged": 0,
                "gold_correct": 0,
                "flagged": 0,
            },
        )
        row["assigned"] += 1
        judgment = getattr(a, "judgment", None)
        if judgment is None:
            continue
        row["done"] += 1
        row["flagged"] += judgment.flagged
        if judgment.time_on_task_ms is not None:
            times[a.rater_id].append(judgment.time_on_task_ms)
        if a.comparison.is_gold:
            row["gold_judged"] += 1
            row["gold_correct"] += gold_is_correct(
                choice=judgment.choice,
                left_is_a=a.left_is_a,
                gold_answer=a.comparison.gold_answer,
            )
    return [
        RaterStats(
            **row,
            median_time_ms=statistics.median(times[rater_id]) if times[rater_id] else None,
        )
        for rater_id, row in rows.items()
    ]


def study_flagged(*, study: Study) -> QuerySet[Judgment]:
    return (
        Judgment.objects.filter(assignment__comparison__study=study, flagged=True)
        .select_related("assignment__rater", "assignment__comparison__prompt")
        .order_by("-updated_at")
    )


def study_raters(*, study: Study) -> QuerySet[AbstractBaseUser]:
    return (
        get_user_model()
        .objects.filter(assignments__comparison__study=study)
        .distinct()
        .order_by("username")
    )


def study_candidate_raters(*, study: Study | None = None) -> QuerySet[AbstractBaseUser]:
    """Active accounts that could rate (not yet in ``study``), experts first."""
    users = get_user_model().objects.filter(is_active=True)
    if study is not None:
        users = users.exclude(assignments__comparison__study=study)
    return users.annotate(
        expert=Count("groups", filter=Q(groups__name=EXPERT_GROUP)),
    ).order_by("-expert", "username")


def study_list() -> QuerySet[Study]:
    """Every study, newest first, with its systems and ``comparison_count``,
    ``assignment_count`` and ``judgment_count`` annotated."""
    return (
        Study.objects.select_related("run", "created_by")
        .prefetch_related("systems")
        .annotate(
            comparison_count=Count("comparisons", distinct=True),
            assignment_count=Count("comparisons__assignments", distinct=True),
            judgment_count=Count("comparisons__assignments__judgment", distinct=True),
        )
        .order_by("-created_at", "-id")
    )
