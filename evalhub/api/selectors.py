"""Querysets behind the API that the pages do not share. The rater's are always scoped to the
rater; the manager's are prefetched so that a page of results costs a fixed number of queries.
The lists pages show too (datasets, runs, studies) come from the apps' own selectors."""

from collections import defaultdict

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Prefetch, QuerySet

from evalhub.models import Assignment, Comparison, Judgment, Output, StudyStatus, System
from trainer.models import FineTuneRun
from trainer.selectors.runs import run_list

# The largest id a BigAutoField holds. A filter value above it names no row, and SQLite cannot
# even bind it (OverflowError, a 500): the filter serializers refuse it as a 400.
MAX_ID = 2**63 - 1


def assignments_for_rater(*, rater: AbstractBaseUser) -> QuerySet[Assignment]:
    """The rater's own assignments, in their order, in the studies their rating page shows
    (open and paused: a draft is not started, a closed study is no longer theirs to see)."""
    return (
        Assignment.objects.filter(
            rater=rater, comparison__study__status__in=[StudyStatus.OPEN, StudyStatus.PAUSED]
        )
        .select_related(
            "comparison__study",
            "comparison__prompt",
            "comparison__output_a",
            "comparison__output_b",
            "judgment",
        )
        .order_by("comparison__study_id", "position")
    )


def run_detail() -> QuerySet[FineTuneRun]:
    """A run with its loss curve prefetched."""
    return run_list().prefetch_related("metrics")


def system_list() -> QuerySet[System]:
    return (
        System.objects.select_related("base_model", "run")
        .annotate(output_count=Count("outputs"))
        .order_by("name")
    )


def system_metric_means(*, system: System) -> dict[str, float]:
    """Mean of each automated metric over the system's scored outputs (metrics live in JSON, so
    the mean is taken here rather than in SQL, identically on SQLite and PostgreSQL)."""
    totals: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for metrics in Output.objects.filter(system=system).values_list("metrics", flat=True):
        for name, value in (metrics or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                totals[name] += value
                counts[name] += 1
    return {name: totals[name] / counts[name] for name in sorted(totals)}


def comparison_list(*, study_id: int | None = None) -> QuerySet[Comparison]:
    assignments = Assignment.objects.select_related(
        "rater", "left_output__system", "judgment"
    ).order_by("rater__username")
    queryset = Comparison.objects.select_related(
        "prompt", "output_a__system", "output_b__system"
    ).prefetch_related(Prefetch("assignments", queryset=assignments))
    if study_id is not None:
        queryset = queryset.filter(study_id=study_id)
    return queryset


def judgment_list(*, study_id: int | None = None) -> QuerySet[Judgment]:
    queryset = Judgment.objects.select_related(
        "assignment__rater",
        "assignment__comparison__output_a__system",
        "assignment__comparison__output_b__system",
    ).order_by("id")
    if study_id is not None:
        queryset = queryset.filter(assignment__comparison__study_id=study_id)
    return queryset
