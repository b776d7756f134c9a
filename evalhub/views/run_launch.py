"""Runs from the web: the "New run" form (empty, or cloned from a run), and the cancel, resume
and retry buttons of the run page.

Training never happens here: a run is created and queued, and a worker trains it.
"""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from evalhub.forms.runs import RunForm, initial_from_run
from evalhub.roles import manager_required
from trainer.models import Dataset, FineTuneRun, RunStatus
from trainer.selectors.datasets import dataset_split_counts
from trainer.services.run_queue import run_submit, run_submit_resume
from trainer.services.runs import RunError, run_request_cancel, run_retry_spec

CANCEL_ASKED = "Run {id} stops at its next step and keeps its checkpoint."
CANCELLED = "Run {id} was cancelled before a worker took it."
NOT_ACTIVE = "Run {id} is {status}: there is nothing to cancel."
RESUMED = "Run {id} continues run {previous} from its last checkpoint."
RETRIED = (
    "Run {id} starts run {previous} again from step 0 with the same settings. Run names are "
    "unique, so it is named “{name}”."
)
LINT_ISSUES_SHOWN = 6


@manager_required
@vary_on_headers("HX-Request")
def run_new(request: HttpRequest) -> HttpResponse:
    """GET: the form (``?dataset=NAME`` preselects one; an htmx GET answers only its lint
    summary). POST: create and queue the run, then go to its page; 400 with inline errors."""
    if request.method == "POST":
        form = RunForm(request.POST)
        if form.is_valid():
            try:
                run = run_submit(spec=form.run_spec(), created_by=request.user)
            except RunError as error:
                # The model spec was checked by the form: what is left is about the dataset.
                form.add_error("dataset", str(error))
            else:
                # No message: the run page says "queued" live, and stops saying it in time.
                return redirect("run_detail", pk=run.pk)
        dataset = Dataset.objects.filter(name=request.POST.get("dataset")).first()
        return render(request, "evalhub/run_new.html", _context(form, dataset), status=400)

    dataset = Dataset.objects.filter(name=request.GET.get("dataset") or None).first()
    form = RunForm(initial={"dataset": dataset.name if dataset else None})
    if request.htmx:
        return render(request, "evalhub/run_new.html#dataset-lint", _context(form, dataset))
    return render(request, "evalhub/run_new.html", _context(form, dataset))


@manager_required
def run_clone(request: HttpRequest, pk: int) -> HttpResponse:
    """The New run form holding this run's dataset, base model and settings, to change and
    queue as a new run (the form posts to ``run_new``)."""
    source = get_object_or_404(FineTuneRun.objects.select_related("dataset", "base_model"), pk=pk)
    form = RunForm(initial=initial_from_run(source))
    context = _context(form, source.dataset) | {"source": source}
    return render(request, "evalhub/run_new.html", context)


def _context(form: RunForm, dataset: Dataset | None) -> dict:
    lint = None
    if dataset is not None:
        lint = {
            "dataset": dataset,
            "counts": dataset_split_counts(dataset=dataset),
            "issues": dataset.lint_report[:LINT_ISSUES_SHOWN],
            "more": max(0, len(dataset.lint_report) - LINT_ISSUES_SHOWN),
        }
    return {"form": form, "lint": lint}


@manager_required
@require_POST
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(FineTuneRun, pk=pk)
    if not run.is_active:
        return _refused(request, run, NOT_ACTIVE.format(id=run.pk, status=run.status))
    run = run_request_cancel(run=run)
    done = run.status == RunStatus.CANCELLED
    messages.success(request, (CANCELLED if done else CANCEL_ASKED).format(id=run.pk))
    return redirect("run_detail", pk=run.pk)


@manager_required
@require_POST
def run_resume(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(FineTuneRun.objects.select_related("dataset", "base_model"), pk=pk)
    try:
        resumed = run_submit_resume(run=run, created_by=request.user)
    except RunError as error:
        return _refused(request, run, str(error))
    messages.success(request, RESUMED.format(id=resumed.pk, previous=run.pk))
    return redirect("run_detail", pk=resumed.pk)


@manager_required
@require_POST
def run_retry(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(FineTuneRun.objects.select_related("dataset", "base_model"), pk=pk)
    try:
        retry = run_submit(spec=run_retry_spec(run=run), created_by=request.user)
    except RunError as error:
        return _refused(request, run, str(error))
    messages.success(request, RETRIED.format(id=retry.pk, previous=run.pk, name=retry.name))
    return redirect("run_detail", pk=retry.pk)


def _refused(request: HttpRequest, run: FineTuneRun, message: str) -> HttpResponse:
    """409: the button does not fit the run's state (another tab or a worker changed it)."""
    context = {"run": run, "message": message}
    return render(request, "evalhub/run_refused.html", context, status=409)
