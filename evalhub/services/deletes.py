"""Deleting a dataset, a run or a study, all or nothing, only when its plan allows it.

The run and the dataset are trainer's rows, but their deletes live here: evaluation rows
(systems, prompts, comparisons) depend on them and trainer never imports evalhub. Each service
locks its rows, reads the plan again inside its transaction (on SQLite the IMMEDIATE transaction
alone keeps anything from slipping in between) and refuses with the plan's reasons. What the
plan cannot foresee still cannot be half-deleted: the PROTECT relations roll the whole delete
back.
"""

import shutil

from django.db import transaction

from evalhub.models import Assignment, Study, System
from evalhub.selectors.deletes import (
    DeletePlan,
    dataset_delete_plan,
    run_delete_plan,
    study_delete_plan,
)
from trainer.models import Dataset, FineTuneRun


class DeleteRefused(Exception):
    """Something depends on the object; ``reasons`` says what, one sentence each."""

    def __init__(self, reasons: list[str]):
        super().__init__(" ".join(reasons))
        self.reasons = reasons


def _check(plan: DeletePlan) -> DeletePlan:
    if not plan.allowed:
        raise DeleteRefused(plan.refusals)
    return plan


@transaction.atomic
def study_delete(*, study: Study) -> None:
    """Delete a study without judgments, with its comparisons and assignments."""
    study = Study.objects.select_for_update().get(pk=study.pk)
    # A judgment is written under its assignment's row lock; holding them all keeps one from
    # landing between the check and the delete, which would take it along.
    list(Assignment.objects.select_for_update().filter(comparison__study=study).values("pk"))
    _check(study_delete_plan(study=study))
    study.delete()


@transaction.atomic
def run_delete(*, run: FineTuneRun) -> None:
    """Delete a run no study uses and that neither trains nor is resumed, with its loss curve,
    its base and adapter systems and their outputs, and, once committed, its folder on disk
    (adapter and checkpoints)."""
    run = FineTuneRun.objects.select_for_update().get(pk=run.pk)
    plan = _check(run_delete_plan(run=run))
    System.objects.filter(run=run).delete()
    run.delete()
    if plan.folder is not None:
        folder = plan.folder
        transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))


@transaction.atomic
def dataset_delete(*, dataset: Dataset) -> None:
    """Delete a dataset no run was trained on and no study compares, with its examples, its
    evaluation prompts and every output on them."""
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
    _check(dataset_delete_plan(dataset=dataset))
    dataset.delete()
