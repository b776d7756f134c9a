from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from evalhub.forms.datasets import DatasetUploadForm
from evalhub.models import PreferenceSet
from evalhub.roles import manager_required
from trainer.datasets import DatasetError
from trainer.models import Dataset
from trainer.selectors import datasets as dataset_selectors
from trainer.selectors.datasets import (
    dataset_pair_count,
    dataset_preview,
    dataset_split_counts,
)
from trainer.services.datasets import DatasetNameError, dataset_import_upload


@manager_required
def dataset_list(request: HttpRequest) -> HttpResponse:
    return render(
        request, "evalhub/dataset_list.html", {"datasets": dataset_selectors.dataset_list()}
    )


@manager_required
def dataset_upload(request: HttpRequest) -> HttpResponse:
    """A refused import answers 422 with the lint report; unusable input 400 with the reason."""
    result = None
    status = 200
    form = DatasetUploadForm()
    if request.method == "POST":
        form = DatasetUploadForm(request.POST, request.FILES)
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                result = dataset_import_upload(
                    upload=data["file"],
                    name=data["name"],
                    spec=form.import_spec(),
                    created_by=request.user,
                )
            except DatasetNameError as error:
                form.add_error("name", str(error))
            except DatasetError as error:
                form.add_error("file", str(error))
            else:
                if result.imported:
                    messages.success(request, f"Imported {result.name}.")
                    return redirect("dataset_detail", name=result.name)
                status = 422
    return render(
        request, "evalhub/dataset_upload.html", {"form": form, "result": result}, status=status
    )


@manager_required
def dataset_detail(request: HttpRequest, name: str) -> HttpResponse:
    dataset = get_object_or_404(Dataset, name=name)
    context = {
        "dataset": dataset,
        "counts": dataset_split_counts(dataset=dataset),
        "pairs": dataset_pair_count(dataset=dataset),
        "preview": dataset_preview(dataset=dataset),
        "issues": dataset.lint_report,
        "preference_set": PreferenceSet.objects.filter(dataset=dataset).first(),
    }
    return render(request, "evalhub/dataset_detail.html", context)
