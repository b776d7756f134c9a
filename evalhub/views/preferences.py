"""Preference sets: the list, one set's page and its JSONL download, and building one from a
study. Managers only."""

import json
from collections.abc import Iterable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render

from evalhub.forms.preferences import PreferenceSetBuildForm
from evalhub.models import PreferenceSet, Study
from evalhub.roles import manager_required
from evalhub.selectors.preferences import (
    PAIRS,
    preference_set_list,
    preference_set_records,
    preference_set_rows,
)
from evalhub.services.preferences import PreferenceError, preference_set_build

PREVIEW_ROWS = 20
DOWNLOAD_CONTENT_TYPE = "application/octet-stream"


@manager_required
def preference_list(request: HttpRequest) -> HttpResponse:
    return render(request, "evalhub/preference_list.html", {"sets": preference_set_list()})


def _get_set(name: str, version: int) -> PreferenceSet:
    return get_object_or_404(preference_set_list(), name=name, version=version)


@manager_required
def preference_detail(request: HttpRequest, name: str, version: int) -> HttpResponse:
    preference_set = _get_set(name, version)
    rows = preference_set_rows(preference_set=preference_set)
    context = {
        "set": preference_set,
        "rules": preference_set.rules,
        "judgment_count": preference_set.judgments.count(),
        "validation_count": rows.filter(split="validation").count(),
        "preview": list(rows[:PREVIEW_ROWS]),
    }
    return render(request, "evalhub/preference_detail.html", context)


@manager_required
def preference_download(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """``?layout=pairs`` (default) or ``?layout=messages``: the set as JSONL."""
    preference_set = _get_set(name, version)
    layout = request.GET.get("layout", PAIRS)
    try:
        records = preference_set_records(preference_set=preference_set, layout=layout)
    except ValueError as error:
        return HttpResponseBadRequest(str(error))
    return preference_set_file(preference_set=preference_set, records=records, layout=layout)


def preference_set_file(
    *, preference_set: PreferenceSet, records: Iterable[dict], layout: str
) -> HttpResponse:
    """The set's records as a JSONL attachment, for the page and the API alike. Served as
    octet-stream: JSON Lines has no registered media type, and clients treat the file as bytes."""
    body = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    response = HttpResponse(body.encode(), content_type=DOWNLOAD_CONTENT_TYPE)
    filename = f"{preference_set.dataset.name}-{layout}.jsonl"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@manager_required
def preference_build(request: HttpRequest, pk: int) -> HttpResponse:
    """The build form of a study (also on the study's page); a refusal is a form error."""
    study = get_object_or_404(Study, pk=pk)
    form = PreferenceSetBuildForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            data = form.cleaned_data
            try:
                built = preference_set_build(
                    study=study,
                    name=data["name"],
                    validation_share=data["validation_share"],
                    seed=data["seed"],
                    correction_pairs=data["correction_pairs"],
                    created_by=request.user,
                )
            except PreferenceError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, f"Built {built}.")
                return redirect("preference_detail", name=built.name, version=built.version)
    context = {"study": study, "form": form}
    return render(request, "evalhub/preference_build.html", context, status=status)
