"""Reads about model judges: what a judge still has to answer on a study, and the study page's
judge block."""

from dataclasses import dataclass

from django.db.models import Count, QuerySet, Sum

from evalhub.judging.pairwise import ORDERS
from evalhub.models import Comparison, Judge, JudgeRun, JudgeVerdict, Study
from trainer.engine.model_store import DEFAULT_BASE_MODEL

# The judge defined on first use: the packaged base model, read locally.
DEFAULT_JUDGE = DEFAULT_BASE_MODEL


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
    judges: list[tuple[Judge, int]]  # every judge, with its verdicts stored on this study
    runs: list[JudgeRun]  # the latest on this study
    questions: int  # two per non-gold comparison
    default: str = DEFAULT_JUDGE

    @property
    def default_defined(self) -> bool:
        return any(judge.name == self.default for judge, _ in self.judges)


def study_judge_block(*, study: Study, runs: int = 5) -> JudgeBlock:
    counts = dict(
        JudgeVerdict.objects.filter(comparison__study=study)
        .order_by()  # the default ordering would split the groups
        .values("judge_id")
        .annotate(n=Count("id"))
        .values_list("judge_id", "n")
    )
    return JudgeBlock(
        judges=[(judge, counts.get(judge.pk, 0)) for judge in Judge.objects.order_by("name")],
        runs=list(
            JudgeRun.objects.filter(study=study).select_related("judge").order_by("-pk")[:runs]
        ),
        questions=len(ORDERS) * judge_comparisons(study=study).count(),
    )


def judge_list() -> QuerySet[Judge]:
    """Every judge defined, by name, with who defined it."""
    return Judge.objects.select_related("created_by").order_by("name")


def judge_run_list(*, study_id: int | None = None) -> QuerySet[JudgeRun]:
    """Judge runs, newest first; only one study's with ``study_id``."""
    runs = JudgeRun.objects.select_related("judge").order_by("-pk")
    return runs if study_id is None else runs.filter(study_id=study_id)
