"""The run page's "Generate + score" button: queue the run's evaluation for a worker."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from evalhub.roles import manager_required
from evalhub.selectors.outputs import OutputsError
from evalhub.services.evaluation_queue import run_evaluation_enqueue
from trainer.models import FineTuneRun

QUEUED = "Generation and scoring of run {id} are queued for a gpu worker."
ALREADY = "Generation and scoring of run {id} are already queued or running."


@manager_required
@require_POST
def run_evaluate(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(FineTuneRun.objects.select_related("base_model"), pk=run_id)
    try:
        _, queued = run_evaluation_enqueue(run=run)
    except OutputsError as error:
        context = {"run": run, "message": str(error)}
        return render(request, "evalhub/run_refused.html", context, status=409)
    messages.success(request, (QUEUED if queued else ALREADY).format(id=run.pk))
    return redirect("run_detail", pk=run.pk)
