"""Manager pages: a study's analysis, one item unblinded, and report downloads."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from evalhub.models import Comparison, Study
from evalhub.reports.build import report_build
from evalhub.reports.items import item_detail
from evalhub.reports.render import (
    CONTENT_TYPES,
    REPORT_FORMATS,
    ReportError,
    report_context,
    report_render,
)
from evalhub.roles import manager_required


@manager_required
def study_analysis(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=pk)
    context = report_context(report_build(study, include_judgments=False), link_items=True)
    context["study"] = study
    context["formats"] = REPORT_FORMATS
    return render(request, "evalhub/study_analysis.html", context)


@manager_required
def study_item(request: HttpRequest, pk: int, comparison_id: int) -> HttpResponse:
    comparison = get_object_or_404(
        Comparison.objects.select_related(
            "study", "prompt", "output_a__system", "output_b__system"
        ),
        pk=comparison_id,
        study_id=pk,
    )
    return render(request, "evalhub/study_item.html", item_detail(comparison))


@manager_required
def study_report(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    if fmt not in REPORT_FORMATS:
        raise Http404("unknown report format")
    study = get_object_or_404(Study, pk=pk)
    try:
        body = report_render(report_build(study), fmt)
    except ReportError as error:
        return HttpResponse(str(error), status=503, content_type="text/plain; charset=utf-8")
    response = HttpResponse(body, content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="study-{study.pk}-report.{fmt}"'
    return response
