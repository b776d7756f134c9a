"""Confirmation pages for deleting a dataset, a run or a study: GET shows what goes with it, or
why it cannot go; POST deletes it, or answers 409 with the reasons something depends on it."""

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from evalhub.models import Study
from evalhub.roles import manager_required
from evalhub.selectors.deletes import (
    DeletePlan,
    dataset_delete_plan,
    run_delete_plan,
    study_delete_plan,
)
from evalhub.services.deletes import DeleteRefused, dataset_delete, run_delete, study_delete
from trainer.models import Dataset, FineTuneRun


def _confirm(
    request: HttpRequest,
    *,
    what: str,
    back: str,
    plan: Callable[[], DeletePlan],
    delete: Callable[[], None],
    done: str,
) -> HttpResponse:
    status = 200
    if request.method == "POST":
        try:
            delete()
        except DeleteRefused:
            status = 409
        else:
            messages.success(request, f"Deleted {what}.")
            return redirect(done)
    context = {"what": what, "back": back, "plan": plan()}
    return render(request, "evalhub/confirm_delete.html", context, status=status)


@manager_required
@require_http_methods(["GET", "POST"])
def dataset_delete_view(request: HttpRequest, name: str) -> HttpResponse:
    dataset = get_object_or_404(Dataset, name=name)
    return _confirm(
        request,
        what=f"dataset {dataset.name!r}",
        back=reverse("dataset_detail", args=[dataset.name]),
        plan=lambda: dataset_delete_plan(dataset=dataset),
        delete=lambda: dataset_delete(dataset=dataset),
        done="dataset_list",
    )


@manager_required
@require_http_methods(["GET", "POST"])
def run_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(FineTuneRun, pk=pk)
    return _confirm(
        request,
        what=f"run {run.name!r}",
        back=reverse("run_detail", args=[run.pk]),
        plan=lambda: run_delete_plan(run=run),
        delete=lambda: run_delete(run=run),
        done="run_list",
    )


@manager_required
@require_http_methods(["GET", "POST"])
def study_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=pk)
    return _confirm(
        request,
        what=f"study {study.name!r}",
        back=reverse("study_detail", args=[study.pk]),
        plan=lambda: study_delete_plan(study=study),
        delete=lambda: study_delete(study=study),
        done="study_list",
    )
