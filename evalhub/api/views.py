"""Manager endpoints: read-only catalogue (datasets, runs with their loss curves, systems),
studies, comparisons and judgments, all unblinded. Every view here is staff only."""

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from evalhub.api import selectors
from evalhub.api import serializers as s
from evalhub.api.errors import study_validation_error
from evalhub.api.permissions import AUTHENTICATION_CLASSES, MANAGER_PERMISSIONS
from evalhub.models import Study
from evalhub.selectors.studies import study_list
from evalhub.services.gold import GoldError, gold_parse
from evalhub.services.studies import StudyError, study_add_raters, study_create, study_set_status
from trainer.selectors.datasets import dataset_list
from trainer.selectors.runs import run_list

STUDY_FILTER = OpenApiParameter(
    "study", OpenApiTypes.INT, description="Only objects of this study (id)"
)


class StudyFilterSerializer(serializers.Serializer):
    study = serializers.IntegerField(required=False, min_value=1, max_value=selectors.MAX_ID)


def study_filter(request: Request) -> int | None:
    """``?study=<id>``, validated: a malformed value is a 400 naming the parameter."""
    params = StudyFilterSerializer(data=request.query_params.dict())
    params.is_valid(raise_exception=True)
    return params.validated_data.get("study")


class ManagerViewSet(viewsets.GenericViewSet):
    authentication_classes = AUTHENTICATION_CLASSES
    permission_classes = MANAGER_PERMISSIONS


class DatasetViewSet(ManagerViewSet, viewsets.ReadOnlyModelViewSet):
    """Imported datasets with split sizes; the detail carries the full lint report."""

    def get_queryset(self) -> QuerySet:
        return dataset_list()

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return s.DatasetDetailSerializer if self.action == "retrieve" else s.DatasetSerializer


class RunViewSet(ManagerViewSet, viewsets.ReadOnlyModelViewSet):
    """Fine-tuning runs; the detail carries hyperparameters, environment and the loss curves."""

    def get_queryset(self) -> QuerySet:
        return selectors.run_detail() if self.action == "retrieve" else run_list()

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return s.RunDetailSerializer if self.action == "retrieve" else s.RunSerializer


class SystemViewSet(ManagerViewSet, viewsets.ReadOnlyModelViewSet):
    """Systems (base model, adapters, references, imports); the detail adds metric means."""

    def get_queryset(self) -> QuerySet:
        return selectors.system_list()

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return s.SystemDetailSerializer if self.action == "retrieve" else s.SystemSerializer

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        system = self.get_object()
        system.metric_means = selectors.system_metric_means(system=system)
        return Response(self.get_serializer(system).data)


@extend_schema_view(list=extend_schema(parameters=[STUDY_FILTER]))
class ComparisonViewSet(ManagerViewSet, viewsets.ReadOnlyModelViewSet):
    """Comparisons unblinded: both outputs with systems and metrics, gold, every assignment."""

    serializer_class = s.ComparisonSerializer

    def get_queryset(self) -> QuerySet:
        study_id = study_filter(self.request) if self.action == "list" else None
        return selectors.comparison_list(study_id=study_id)


@extend_schema_view(list=extend_schema(parameters=[STUDY_FILTER]))
class JudgmentViewSet(ManagerViewSet, viewsets.ReadOnlyModelViewSet):
    """Every rater's judgments with the systems behind each side and the preferred system."""

    serializer_class = s.JudgmentSerializer

    def get_queryset(self) -> QuerySet:
        study_id = study_filter(self.request) if self.action == "list" else None
        return selectors.judgment_list(study_id=study_id)


class StudyViewSet(ManagerViewSet, viewsets.ReadOnlyModelViewSet):
    """Studies with their systems and progress counts; managers create them, move them through
    draft → open ⇄ paused → closed, and add raters, all through the study services. The detail
    adds ``sequential``: the always-valid interval and verdict for the adapter's win rate."""

    def get_queryset(self) -> QuerySet:
        return study_list()

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        # Each write has its own input; the browsable API builds its forms from these too.
        inputs = {
            "create": s.StudyCreateSerializer,
            "set_status": s.StudyStatusSerializer,
            "raters": s.StudyRatersSerializer,
            "retrieve": s.StudyDetailSerializer,
        }
        return inputs.get(self.action, s.StudySerializer)

    def _study(self, study_id: int) -> Study:
        return self.get_queryset().get(pk=study_id)

    @extend_schema(request=s.StudyCreateSerializer, responses={201: s.StudySerializer})
    def create(self, request: Request) -> Response:
        params = self.get_serializer(data=request.data)
        params.is_valid(raise_exception=True)
        values = dict(params.validated_data)
        gold = values.pop("gold")
        try:
            if gold:
                gold = gold_parse(gold, require_reference=values["show_reference"])
            study = study_create(**values, gold=gold or (), created_by=request.user)
        except GoldError as exc:
            raise ValidationError({"gold": [str(exc)]}) from exc
        except StudyError as exc:
            raise study_validation_error(exc) from exc
        return Response(
            s.StudySerializer(self._study(study.pk)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=s.StudyStatusSerializer, responses=s.StudySerializer)
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request: Request, pk: str | None = None) -> Response:
        study = self.get_object()
        params = self.get_serializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            study_set_status(study=study, status=params.validated_data["status"])
        except StudyError as exc:
            raise study_validation_error(exc) from exc
        return Response(s.StudySerializer(self._study(study.pk)).data)

    @extend_schema(request=s.StudyRatersSerializer, responses=s.StudyRatersResultSerializer)
    @action(detail=True, methods=["post"])
    def raters(self, request: Request, pk: str | None = None) -> Response:
        study = self.get_object()
        params = self.get_serializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            created = study_add_raters(study=study, **params.validated_data)
        except StudyError as exc:
            raise study_validation_error(exc) from exc
        result = {"assignments_created": len(created), "study": self._study(study.pk)}
        return Response(s.StudyRatersResultSerializer(result).data)
