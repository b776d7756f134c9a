"""Reads about model judges: what a judge still has to answer on a study, and the study page's
judge block."""

from dataclasses import dataclass

from django.db.models import Count, QuerySet, Sum

from evalhub.judging.pairwise import ORDERS
from evalhub.models import Comparison, Judge, JudgeRun, JudgeVerdict, Study


def judge_get(*, name: str) -> Judge | None:
    return Judge.objects.filter(name=name).first()


def judge_comparisons(*, study: Study) -> QuerySet[Comparison]:
    """The comparisons a judge answers: every one but the gold items (they test raters)."""
    return (
        Comparison.objects.filter(study=study, is_gold=False)
        .select_related("prompt", "output_a", "output_b")
        .order_by("pk")
    )


def judge_missing(*, judge: Judge, study: Study) -> list[tuple[Comparison, str]]:
    """(comparison, order) pairs the judge has no verdict for yet, in comparison order."""
    done = set(
        JudgeVerdict.objects.filter(judge=judge, comparison__study=study).values_list(
            "comparison_id", "order"
        )
    )
    return [
        (comparison, order)
        for comparison in judge_comparisons(study=study)
        for order in ORDERS
        if (comparison.pk, order) not in done
    ]


def judge_tokens_spent(*, judge: Judge, study: Study) -> int:
    """Tokens this judge has used on this study, over all its runs: what its budget limits."""
    spent = JudgeRun.objects.filter(judge=judge, study=study).aggregate(n=Sum("tokens_used"))
    return spent["n"] or 0


@dataclass(frozen=True)
class JudgeBlock:
    judges: list[Judge]
    runs: list[JudgeRun]
    verdicts: dict[str, int]  # judge name -> verdicts stored on this study
    questions: int  # two per non-gold comparison


def study_judge_block(*, study: Study, runs: int = 5) -> JudgeBlock:
    counts = (
        JudgeVerdict.objects.filter(comparison__study=study)
        .order_by()  # the default ordering would split the groups
        .values("judge__name")
        .annotate(n=Count("id"))
        .values_list("judge__name", "n")
    )
    return JudgeBlock(
        judges=list(Judge.objects.order_by("name")),
        runs=list(
            JudgeRun.objects.filter(study=study).select_related("judge").order_by("-pk")[:runs]
        ),
        verdicts=dict(counts),
        questions=len(ORDERS) * judge_comparisons(study=study).count(),
    )
