"""``/api/judges/``, ``/api/judge-runs/`` and ``POST /api/studies/<id>/judge/``: model judges
defined as on the Judges page (and by ``judge_add``), and queued over a study as the study
page's Run judge button does, through the same services. Managers only."""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalhub.api import judge_serializers as js
from evalhub.api.form_input import form_bound, form_validation_error
from evalhub.api.permissions import AUTHENTICATION_CLASSES, MANAGER_PERMISSIONS
from evalhub.api.views import STUDY_FILTER, ManagerViewSet, study_filter
from evalhub.forms.judges import JudgeForm
from evalhub.models import Study
from evalhub.selectors.judging import judge_list, judge_run_list
from evalhub.services.judging import JudgeError, judge_create, judge_named, judge_run_enqueue


def judge_validation_error(error: JudgeError) -> ValidationError:
    """The service's refusal as a 400 under the field it names."""
    return ValidationError({error.field or "non_field_errors": [str(error)]})


class JudgeViewSet(ManagerViewSet, viewsets.ReadOnlyModelViewSet):
    """Model judges: backend, model, endpoint and the name of the key's environment variable
    (never a key). A manager defines one here as on the Judges page or with ``judge_add``."""

    def get_queryset(self) -> QuerySet:
        return judge_list()

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        inputs = {"create": js.JudgeCreateSerializer, "retrieve": js.JudgeDetailSerializer}
        return inputs.get(self.action, js.JudgeSerializer)

    @extend_schema(
        summary="Define a model judge (checked as judge_add checks it; nothing is called)",
        responses={201: js.JudgeDetailSerializer},
    )
    def create(self, request: Request) -> Response:
        form = form_bound(JudgeForm, request)
        if not form.is_valid():
            raise form_validation_error(form)
        try:
            judge = judge_create(**form.cleaned_data, created_by=request.user)
        except JudgeError as error:
            raise judge_validation_error(error) from error
        judge = self.get_queryset().get(pk=judge.pk)
        return Response(js.JudgeDetailSerializer(judge).data, status=status.HTTP_201_CREATED)


@extend_schema_view(list=extend_schema(parameters=[STUDY_FILTER]))
class JudgeRunViewSet(ManagerViewSet, viewsets.ReadOnlyModelViewSet):
    """Runs of judges over studies, newest first: status, verdicts stored, tokens used, and
    the questions left unanswered with why."""

    serializer_class = js.JudgeRunSerializer

    def get_queryset(self) -> QuerySet:
        study_id = study_filter(self.request) if self.action == "list" else None
        return judge_run_list(study_id=study_id)


class StudyJudgeView(APIView):
    """Queue a judge over the study, as the study page's Run judge button does: a local judge
    on the gpu queue, an HTTP one on default. A run of this judge still waiting on this study
    is answered instead of a second."""

    authentication_classes = AUTHENTICATION_CLASSES
    permission_classes = MANAGER_PERMISSIONS
    serializer_class = js.StudyJudgeSerializer

    @extend_schema(
        summary="Queue a model judge over the study",
        request=js.StudyJudgeSerializer,
        responses={202: js.JudgeRunSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        study = get_object_or_404(Study, pk=pk)
        params = js.StudyJudgeSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            judge = judge_named(name=params.validated_data["judge"])
            run = judge_run_enqueue(judge=judge, study=study)
        except JudgeError as error:
            raise judge_validation_error(error) from error
        run = judge_run_list().get(pk=run.pk)
        return Response(js.JudgeRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)
