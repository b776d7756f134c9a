"""The plain data of a run's model card (``evalhub.reports.model_card``): its training data and
lineage, its win rates against its base model and the adapter it started from in the studies
that compared them, its metric means, and rater comments on the items it lost."""

from django.db.models import Q

from evalhub import blinding
from evalhub.analysis.base import Insufficient
from evalhub.analysis.winrate import pair_summary
from evalhub.api.selectors import system_metric_means
from evalhub.metrics import METRICS
from evalhub.models import Choice, Judgment, Study, System, SystemKind
from evalhub.reports.build import report_ratings
from evalhub.reports.model_card import CardData, LineageStep, WinRate
from evalhub.selectors.lineage import (
    lineage_systems,
    preference_set_names,
    training_rows,
)
from evalhub.selectors.lineage_graph import run_headline
from evalhub.selectors.outputs import run_systems
from trainer.engine.config import settings_that_apply
from trainer.models import FineTuneRun
from trainer.selectors.runs import run_ancestors

WEAKNESSES_SHOWN = 5


def _win_rates(adapter: System, opponents: list[tuple[str, System]], studies) -> list[WinRate]:
    found = []
    for study in studies:
        names = {s.name for s in study.systems.all()}
        present = [(role, s) for role, s in opponents if s.name in names]
        if not present:
            continue
        ratings = report_ratings(study).ratings
        for role, opponent in present:
            summary = pair_summary(ratings, adapter.name, opponent.name, seed=study.seed)
            wilson = summary.wilson
            bounded = not isinstance(wilson, Insufficient)
            found.append(
                WinRate(
                    role=role,
                    opponent=opponent.name,
                    study=study.name,
                    win_rate=summary.win_rate,
                    low=wilson.low if bounded else None,
                    high=wilson.high if bounded else None,
                    judgments=summary.n,
                )
            )
    return found


def _lost_comments(adapter: System, studies) -> list[str]:
    """Comments of judgments whose other answer was preferred to the adapter's, newest first."""
    judgments = (
        Judgment.objects.filter(assignment__comparison__study__in=studies)
        .filter(
            Q(assignment__comparison__output_a__system=adapter)
            | Q(assignment__comparison__output_b__system=adapter)
        )
        .filter(choice__in=[Choice.A, Choice.B])
        .exclude(comment="")
        .select_related("assignment__comparison__output_a")
        .order_by("-created_at")
    )
    comments = []
    for judgment in judgments:
        assignment = judgment.assignment
        comparison = assignment.comparison
        verdict = blinding.unblind_choice(judgment.choice, left_is_a=assignment.left_is_a)
        winner = comparison.output_a if verdict == "a" else comparison.output_b
        if winner.system_id != adapter.pk:
            comments.append(judgment.comment)
        if len(comments) == WEAKNESSES_SHOWN:
            break
    return comments


def model_card_data(*, run: FineTuneRun) -> CardData:
    chain = run_ancestors(run=run)
    sets = preference_set_names()
    adapter = run_systems(run=run)[SystemKind.ADAPTER]
    win_rates, weaknesses, experts, judgments = [], [], 0, 0
    if adapter is not None:
        systems = lineage_systems(run=run)
        base = next((s for s in systems if s.kind == SystemKind.BASE), None)
        previous = run_systems(run=run.from_run)[SystemKind.ADAPTER] if run.from_run else None
        opponents = [(role, s) for role, s in (("base", base), ("previous adapter", previous))]
        opponents = [(role, s) for role, s in opponents if s is not None]
        studies = Study.objects.filter(systems=adapter).order_by("created_at", "pk")
        win_rates = _win_rates(adapter, opponents, studies.prefetch_related("systems"))
        weaknesses = _lost_comments(adapter, studies)
        done = Judgment.objects.filter(assignment__comparison__study__in=studies).exclude(
            choice=Choice.SKIP
        )
        judgments = done.count()
        experts = done.values("assignment__rater").distinct().count()
    means = system_metric_means(system=adapter) if adapter is not None else {}
    return CardData(
        name=run.name,
        run=run.pk,
        method=run.method,
        base_model=run.base_model.source,
        dataset=run.dataset.name,
        content_hash=run.dataset_hash or run.dataset.content_hash,
        training_rows=training_rows(run.dataset).count(),
        hyperparameters=settings_that_apply(run.hyperparameters),
        headline=run_headline(run).capitalize(),
        lineage=[
            LineageStep(
                run=r.pk,
                name=r.name,
                method=r.method,
                dataset=r.dataset.name,
                content_hash=r.dataset_hash or r.dataset.content_hash,
                preference_set=sets.get(r.dataset_id),
            )
            for r in chain
        ],
        preference_set=sets.get(run.dataset_id),
        win_rates=win_rates,
        metrics={m: means[m] for m in METRICS if m in means},
        experts=experts,
        judgments=judgments,
        weaknesses=weaknesses,
    )
