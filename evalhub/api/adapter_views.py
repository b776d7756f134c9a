"""``GET /api/runs/<id>/adapter/``: the run's adapter files and model card as a zip, the same
file as the run page's "Download adapter" link. Managers only; 404 while it has no adapter.

Served as application/zip with its file name, like the page's link. openapi-python-client skips
a response type it does not know; ``evalhub/api/openapi-python-client.yaml`` tells it to read this
one as bytes."""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from evalhub.api.permissions import AUTHENTICATION_CLASSES, MANAGER_PERMISSIONS
from evalhub.reports.adapter_export import AdapterExportError, adapter_zip, zip_name
from evalhub.views.lineage import zip_response
from trainer.models import FineTuneRun


@extend_schema(
    summary="The run's LoRA adapter with its model card (README.md), as a zip",
    responses={(200, "application/zip"): OpenApiTypes.BINARY},
)
class RunAdapterView(APIView):
    authentication_classes = AUTHENTICATION_CLASSES
    permission_classes = MANAGER_PERMISSIONS
    renderer_classes = [JSONRenderer]  # for errors; the zip is a plain HttpResponse

    def get(self, request: Request, pk: int) -> HttpResponse:
        run = get_object_or_404(FineTuneRun.objects.select_related("base_model", "dataset"), pk=pk)
        try:
            content = adapter_zip(run=run)
        except AdapterExportError as exc:
            raise NotFound(str(exc)) from exc
        return zip_response(content, zip_name(run))
