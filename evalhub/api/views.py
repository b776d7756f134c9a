"""Manager endpoints: datasets (uploaded here too), fine-tuning runs with their loss curves
(started here too), systems, studies, comparisons and judgments, all unblinded. Every view here
is staff only."""

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from evalhub.api import selectors
from evalhub.api import serializers as s
from evalhub.api.errors import study_validation_error
from evalhub.api.form_input import form_bound, form_validation_error
from evalhub.api.permissions import AUTHENTICATION_CLASSES, MANAGER_PERMISSIONS
from evalhub.forms.datasets import DatasetUploadForm
from evalhub.forms.runs import RunForm
from evalhub.models import Study
from evalhub.selectors.studies import study_list
from evalhub.services.gold import GoldError, gold_parse
from evalhub.services.studies import StudyError, study_add_raters, study_create, study_set_status
from trainer.datasets import DatasetError
from trainer.selectors.datasets import dataset_list
from trainer.selectors.runs import run_list
from trainer.services.datasets import DatasetNameError, dataset_import_upload
from trainer.services.run_queue import run_submit
from trainer.services.runs import RunError

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
    """Imported datasets with split sizes; the detail carries the full lint report. A manager
    uploads a file as the upload page does: read, linted, split and stored, or nothing stored."""

    # The one body that is not JSON: a file goes as multipart, streamed to disk, never base64.
    parser_classes = [MultiPartParser]

    def get_queryset(self) -> QuerySet:
        return dataset_list()

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        inputs = {"create": s.DatasetUploadSerializer, "retrieve": s.DatasetDetailSerializer}
        return inputs.get(self.action, s.DatasetSerializer)

    @extend_schema(
        summary="Upload a file as a new dataset (the upload page's fields and defaults)",
        responses={201: s.DatasetDetailSerializer, 422: s.DatasetRefusedSerializer},
    )
    def create(self, request: Request) -> Response:
        form = form_bound(DatasetUploadForm, request)
        if not form.is_valid():
            raise form_validation_error(form)
        data = form.cleaned_data
        try:
            result = dataset_import_upload(
                upload=data["file"],
                name=data["name"],
                spec=form.import_spec(),
                created_by=request.user,
            )
        except DatasetNameError as error:
            raise ValidationError({"name": [str(error)]}) from error
        except DatasetError as error:
            raise ValidationError({"file": [str(error)]}) from error
        if not result.imported:
            refused = {"file": [result.refused], **result.report()}
            return Response(refused, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        dataset = self.get_queryset().get(pk=result.dataset.pk)
        return Response(s.DatasetDetailSerializer(dataset).data, status=status.HTTP_201_CREATED)


class RunViewSet(ManagerViewSet, viewsets.ReadOnlyModelViewSet):
    """Fine-tuning runs; the detail carries hyperparameters, environment and the loss curves.
    A manager starts one as the New run form does: created and queued for a worker."""

    def get_queryset(self) -> QuerySet:
        return selectors.run_detail() if self.action == "retrieve" else run_list()

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        inputs = {"create": s.RunStartSerializer, "retrieve": s.RunDetailSerializer}
        return inputs.get(self.action, s.RunSerializer)

    @extend_schema(
        summary="Start a fine-tuning run: create it and queue its training for a worker",
        responses={201: s.RunDetailSerializer},
    )
    def create(self, request: Request) -> Response:
        form = form_bound(RunForm, request)
        if not form.is_valid():
            raise form_validation_error(form)
        try:
            run = run_submit(spec=form.run_spec(), created_by=request.user)
        except RunError as error:
            # The form checked the base model: what run_create refuses is about the dataset.
            raise ValidationError({"dataset": [str(error)]}) from error
        run = selectors.run_detail().get(pk=run.pk)
        return Response(s.RunDetailSerializer(run).data, status=status.HTTP_201_CREATED)


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
