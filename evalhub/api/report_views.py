"""``GET /api/studies/<id>/report/?format=json|csv|html|pdf``: the same files as the analysis
page's download buttons, built by ``report_build`` and the report renderers. Managers only.

DRF normally treats ``?format=`` as a renderer switch; here it names the file format instead, so
this view negotiates JSON for its own errors and answers the file as a plain HttpResponse."""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from evalhub.api.permissions import AUTHENTICATION_CLASSES, MANAGER_PERMISSIONS
from evalhub.models import Study
from evalhub.reports.build import report_build
from evalhub.reports.render import CONTENT_TYPES, REPORT_FORMATS, ReportError, report_render


class ReportUnavailable(APIException):
    """The format cannot be produced on this server (e.g. PDF without Pango)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "report_unavailable"


class JsonErrorsNegotiation(DefaultContentNegotiation):
    """Ignore ``?format=`` and the Accept header: anything DRF renders here is an error, JSON."""

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


class ReportQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=REPORT_FORMATS, required=False, default="json")


@extend_schema(
    summary="The study's report: every number of the analysis, with provenance",
    parameters=[
        OpenApiParameter("format", OpenApiTypes.STR, enum=REPORT_FORMATS, default="json"),
    ],
    responses={
        (200, "application/json"): OpenApiTypes.OBJECT,
        (200, "text/csv"): OpenApiTypes.STR,
        (200, "text/html"): OpenApiTypes.STR,
        (200, "application/pdf"): OpenApiTypes.BINARY,
    },
)
class StudyReportView(APIView):
    authentication_classes = AUTHENTICATION_CLASSES
    permission_classes = MANAGER_PERMISSIONS
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonErrorsNegotiation

    def get(self, request: Request, pk: int) -> HttpResponse:
        query = ReportQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        fmt = query.validated_data["format"]
        study = get_object_or_404(Study, pk=pk)
        try:
            body = report_render(report_build(study), fmt)
        except ReportError as error:
            raise ReportUnavailable(str(error)) from error
        response = HttpResponse(body, content_type=CONTENT_TYPES[fmt])
        if fmt != "json":
            filename = f"study-{study.pk}-report.{fmt}"
            response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
