"""What deleting a dataset, a run or a study would remove, and what forbids it.

One plan per object, read by its confirmation page and checked again by its service inside the
deleting transaction. The rule: nothing is deleted that a study depends on (a study with
judgments is evidence; one without is still someone's design, so it is deleted on its own
first), nor a run that trains or waits to or has an evaluation under way, nor a dataset a run
was trained on.
"""

from dataclasses import dataclass
from pathlib import Path

from django.db.models import Count, Q, QuerySet

from evalhub.models import Assignment, Comparison, Judgment, Output, Prompt, Study, System
from evalhub.selectors.run_tasks import PENDING, run_tasks
from trainer.models import Dataset, FineTuneRun, RunStatus
from trainer.services.run_training import run_output_dir
from trainer.tasks import finetune

STUDY_HAS_JUDGMENTS = "Study {name!r} has {count} judgment{s}."
STUDY_USES_IT = "Study {name!r} compares its outputs (no judgment yet): delete that study first."
RUN_ACTIVE = "It is {status}: cancel it first."
RUN_TASK_PENDING = "Its {task} task is {state}: delete the run once it has ended."
RUN_RESUMES_IT = "Run {name!r} is {status} and resumes from its checkpoint: cancel it first."
RUN_TRAINED_ON_IT = "Run {name!r} was trained on it: delete that run first."


@dataclass(frozen=True)
class DeletePlan:
    """``removes``: (what, how many) deleted with it; ``refusals``: why it cannot be, if so."""

    removes: list[tuple[str, int]]
    refusals: list[str]
    folder: Path | None = None  # a folder on disk removed with it, if there is one

    @property
    def allowed(self) -> bool:
        return not self.refusals


def _study_refusals(studies: QuerySet[Study]) -> list[str]:
    """One reason per study that depends on the object: its judgments, or its mere design."""
    counted = studies.annotate(
        judgments=Count("comparisons__assignments__judgment", distinct=True)
    ).order_by("name")
    return [
        _has_judgments(s.name, s.judgments) if s.judgments else STUDY_USES_IT.format(name=s.name)
        for s in counted
    ]


def _has_judgments(name: str, count: int) -> str:
    return STUDY_HAS_JUDGMENTS.format(name=name, count=count, s="" if count == 1 else "s")


def study_delete_plan(*, study: Study) -> DeletePlan:
    judgments = Judgment.objects.filter(assignment__comparison__study=study).count()
    refusals = [_has_judgments(study.name, judgments)] if judgments else []
    removes = [
        ("comparisons", Comparison.objects.filter(study=study).count()),
        ("rater assignments", Assignment.objects.filter(comparison__study=study).count()),
    ]
    return DeletePlan(removes=removes, refusals=refusals)


def run_delete_plan(*, run: FineTuneRun) -> DeletePlan:
    refusals = []
    if run.is_active:
        refusals.append(RUN_ACTIVE.format(status=run.status))
    resumes = run.resumes.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
    refusals += [RUN_RESUMES_IT.format(name=r.name, status=r.status) for r in resumes]
    # A waiting evaluation would write outputs for a run that is gone. A waiting training task
    # of a run no longer queued only finds that out and ends: it does not hold the run.
    pending = run_tasks(run_id=run.pk).filter(status__in=PENDING)
    refusals += [
        RUN_TASK_PENDING.format(
            task=task.task_path.rsplit(".", 1)[-1],
            state="running" if task.status == "RUNNING" else "waiting for a worker",
        )
        for task in pending.exclude(task_path=finetune.module_path)
    ]
    refusals += _study_refusals(Study.objects.filter(Q(run=run) | Q(systems__run=run)).distinct())
    folder = run_output_dir(run)
    folder = folder if folder.exists() else None
    removes = [
        ("loss-curve points", run.metrics.count()),
        ("systems (its base and adapter)", System.objects.filter(run=run).count()),
        ("outputs of those systems", Output.objects.filter(system__run=run).count()),
    ]
    return DeletePlan(removes=removes, refusals=refusals, folder=folder)


def dataset_delete_plan(*, dataset: Dataset) -> DeletePlan:
    refusals = [RUN_TRAINED_ON_IT.format(name=r.name) for r in dataset.runs.order_by("name")]
    studies = Study.objects.filter(comparisons__prompt__dataset=dataset).distinct()
    refusals += _study_refusals(studies)
    removes = [
        ("examples", dataset.examples.count()),
        ("evaluation prompts", Prompt.objects.filter(dataset=dataset).count()),
        ("outputs on those prompts", Output.objects.filter(prompt__dataset=dataset).count()),
    ]
    return DeletePlan(removes=removes, refusals=refusals)
