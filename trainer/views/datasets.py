from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from evalhub.roles import manager_required
from trainer.models import Dataset


@manager_required
def dataset_list(request: HttpRequest) -> HttpResponse:
    datasets = Dataset.objects.all()
    return render(request, "trainer/dataset_list.html", {"datasets": datasets})
