"""``/api/preference-sets/``: the sets built from studies' judgments, building the next version
of one, and its JSONL download. Managers only, like the pages."""

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from evalhub.api import preference_serializers as ps
from evalhub.api.errors import preference_validation_error
from evalhub.api.views import ManagerViewSet
from evalhub.selectors.preferences import (
    LAYOUTS,
    PAIRS,
    preference_set_list,
    preference_set_records,
)
from evalhub.services.preferences import PreferenceError, preference_set_build
from evalhub.views.preferences import DOWNLOAD_CONTENT_TYPE, preference_set_file


class PreferenceSetViewSet(ManagerViewSet, viewsets.ReadOnlyModelViewSet):
    """Preference sets: chosen/rejected pairs and corrections from a study on feedback prompts,
    with the rules that made them. A manager builds the next version of a set here as the
    study page and ``build_preferences`` do."""

    def get_queryset(self) -> QuerySet:
        return preference_set_list()

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        inputs = {
            "create": ps.PreferenceSetBuildSerializer,
            "retrieve": ps.PreferenceSetDetailSerializer,
            "download": ps.PreferenceDownloadSerializer,
        }
        return inputs.get(self.action, ps.PreferenceSetSerializer)

    @extend_schema(
        summary="Build the next version of a preference set from a study",
        request=ps.PreferenceSetBuildSerializer,
        responses={201: ps.PreferenceSetDetailSerializer},
    )
    def create(self, request: Request) -> Response:
        params = self.get_serializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            built = preference_set_build(**params.validated_data, created_by=request.user)
        except PreferenceError as error:
            raise preference_validation_error(error) from error
        built = self.get_queryset().get(pk=built.pk)
        return Response(
            ps.PreferenceSetDetailSerializer(built).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="The set as JSONL: pairs (prompt, chosen, rejected) or messages (SFT rows)",
        parameters=[OpenApiParameter("layout", OpenApiTypes.STR, enum=LAYOUTS, default=PAIRS)],
        responses={(200, DOWNLOAD_CONTENT_TYPE): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: int) -> HttpResponse:
        query = ps.PreferenceDownloadSerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        preference_set = self.get_object()
        layout = query.validated_data["layout"]
        records = preference_set_records(preference_set=preference_set, layout=layout)
        return preference_set_file(preference_set=preference_set, records=records, layout=layout)
