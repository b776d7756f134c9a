"""The run page's "Generate + score" button: queue the run's evaluation for a worker."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from evalhub.roles import manager_required
from evalhub.selectors.outputs import OutputsError
from evalhub.services.evaluation_queue import run_evaluation_enqueue
from trainer.models import FineTuneRun

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
    if not queued:
        messages.info(request, ALREADY.format(id=run.pk))
    # A queued task shows in the run page's live part, which follows it until it ends; a
    # message would stay on the page after the task had failed.
    return redirect("run_detail", pk=run.pk)
