"""The run's outputs page: metric summaries with intervals and base vs adapter, prompt by prompt."""

from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.views.decorators.vary import vary_on_headers

from evalhub.metrics import METRIC_LABELS, METRICS
from evalhub.roles import manager_required
from evalhub.selectors.outputs import OutputsError, PromptRow, output_rows, outputs_summary
from trainer.models import FineTuneRun, Split

PROMPTS_PER_PAGE = 25
BAD_SPLIT = "split must be one of: train, validation, feedback, test"


@manager_required
@vary_on_headers("HX-Request")
def run_outputs(request: HttpRequest, run_id: int) -> HttpResponse:
    """The run's outputs page: per-system metric means with intervals, adapter − base, and
    every prompt with both answers side by side, sortable by a metric's gain or loss and paged.
    An htmx request (sort, page) gets only the prompt table. 400 for an unknown split or sort."""
    run = get_object_or_404(FineTuneRun.objects.select_related("dataset", "base_model"), pk=run_id)
    split = request.GET.get("split", Split.TEST)
    if split not in Split.values:
        return HttpResponseBadRequest(BAD_SPLIT)
    sort = request.GET.get("sort", "prompt")
    try:
        rows = output_rows(run=run, split=split, sort=sort)
    except OutputsError as error:
        return HttpResponseBadRequest(str(error))
    try:
        page = Paginator(rows, PROMPTS_PER_PAGE).page(request.GET.get("page", 1))
    except (EmptyPage, PageNotAnInteger) as error:
        raise Http404(str(error)) from error
    context = {
        "run": run,
        "split": split,
        "sort": sort,
        "page": page,
        "rows": [_row_view(row) for row in page.object_list],
        "metric_labels": [METRIC_LABELS[m] for m in METRICS],
        "sort_links": _sort_links(sort),
    }
    if request.htmx:
        return render(request, "evalhub/run_outputs.html#prompt-table", context)
    summary = outputs_summary(run=run, split=split)
    difference = summary["difference"]
    if difference:
        difference = {**difference, "cells": _cells(difference["metrics"])}
    context["summary"] = summary
    context["systems"] = [{**s, "cells": _cells(s["metrics"])} for s in summary["systems"]]
    context["difference"] = difference
    return render(request, "evalhub/run_outputs.html", context)


def _cells(metrics: dict) -> list[dict | None]:
    """Intervals in the fixed metric order (templates cannot index a dict by a variable)."""
    return [metrics.get(m) for m in METRICS]


def _row_view(row: PromptRow) -> dict:
    def value(output, metric):
        return output.metrics.get(metric) if output is not None else None

    return {
        "prompt": row.prompt,
        "base": row.base,
        "adapter": row.adapter,
        "cells": [
            {
                "label": METRIC_LABELS[m],
                "base": value(row.base, m),
                "adapter": value(row.adapter, m),
                "difference": row.difference.get(m),
            }
            for m in METRICS
        ],
    }


def _sort_links(current: str) -> list[dict]:
    links = [{"key": "prompt", "label": "prompt order", "active": current == "prompt"}]
    for metric in METRICS:
        label = METRIC_LABELS[metric]
        links.append({"key": metric, "label": f"{label} gains", "active": current == metric})
        links.append(
            {"key": f"-{metric}", "label": f"{label} losses", "active": current == f"-{metric}"}
        )
    return links
