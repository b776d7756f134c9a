from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from evalhub.roles import manager_required
from trainer.models import FineTuneRun


@manager_required
def run_list(request: HttpRequest) -> HttpResponse:
    runs = FineTuneRun.objects.select_related("dataset", "base_model")
    return render(request, "trainer/run_list.html", {"runs": runs})
