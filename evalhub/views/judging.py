"""The study page's "Run judge" button: queue a model judge over the study for a worker."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from evalhub.models import Study
from evalhub.roles import manager_required
from evalhub.selectors.judging import DEFAULT_JUDGE
from evalhub.services.judging import JudgeError, judge_named, judge_run_enqueue

QUEUED = "Judge {judge} queued on this study (run {run}); verdicts appear as a worker answers."


@manager_required
@require_POST
def study_judge(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=pk)
    name = request.POST.get("judge") or DEFAULT_JUDGE
    try:
        judge = judge_named(name=name)
        run = judge_run_enqueue(judge=judge, study=study)
    except JudgeError as error:
        context = {"study": study, "message": str(error)}
        return render(request, "evalhub/study_judge_refused.html", context, status=409)
    messages.success(request, QUEUED.format(judge=judge.name, run=run.pk))
    return redirect("study_detail", pk=study.pk)
