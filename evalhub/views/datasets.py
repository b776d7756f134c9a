from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from evalhub.roles import manager_required
from trainer.datasets import AUTO, FORMATS, DatasetError, InvalidSplit, parse_ratios
from trainer.models import Dataset
from trainer.selectors import datasets as dataset_selectors
from trainer.selectors.datasets import dataset_preview, dataset_split_counts
from trainer.services.datasets import DatasetNameError, dataset_import_upload


class DatasetUploadForm(forms.Form):
    file = forms.FileField(help_text="JSONL, JSON array, CSV/TSV or a transcript")
    name = forms.SlugField(max_length=100, help_text="letters, digits, - and _")
    format = forms.ChoiceField(choices=[(f, f) for f in (AUTO, *FORMATS)], initial=AUTO)
    split = forms.CharField(initial="0.8,0.1,0.1", help_text="train,validation,test shares")
    seed = forms.IntegerField(initial=0)
    strict = forms.BooleanField(required=False, help_text="refuse on warnings too")
    prompt_column = forms.CharField(initial="prompt", help_text="CSV only")
    response_column = forms.CharField(initial="response", help_text="CSV only")

    def clean_split(self) -> tuple[float, float, float]:
        try:
            return parse_ratios(self.cleaned_data["split"])
        except InvalidSplit as error:
            raise forms.ValidationError(str(error)) from None


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
                    format=data["format"],
                    split=data["split"],
                    seed=data["seed"],
                    strict=data["strict"],
                    prompt_column=data["prompt_column"],
                    response_column=data["response_column"],
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
        "preview": dataset_preview(dataset=dataset),
        "issues": dataset.lint_report,
    }
    return render(request, "evalhub/dataset_detail.html", context)
