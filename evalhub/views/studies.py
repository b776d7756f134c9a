from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from evalhub.models import Study
from evalhub.roles import manager_required


@manager_required
def study_list(request: HttpRequest) -> HttpResponse:
    studies = Study.objects.prefetch_related("systems")
    return render(request, "evalhub/study_list.html", {"studies": studies})
