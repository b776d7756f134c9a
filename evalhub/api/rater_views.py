"""The rater's endpoints: their own assignments, blinded, and their judgment on each. The
queryset is always scoped to ``request.user`` (managers included: a manager reads other raters'
work unblinded through /api/comparisons/ and /api/judgments/), so someone else's token is a 404."""

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from evalhub.api import selectors
from evalhub.api.permissions import AUTHENTICATION_CLASSES, JudgmentRateThrottle
from evalhub.api.rater_serializers import (
    BlindAssignmentSerializer,
    JudgmentInputSerializer,
    OwnJudgmentSerializer,
)
from evalhub.models import Judgment
from evalhub.services.allocation import allocation_for_rater
from evalhub.services.judgments import NOT_OPEN, NOT_YOURS, JudgmentError, judgment_submit

ERROR_NO_JUDGMENT = "You have not judged this item yet."


class StudyNotOpen(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "study_not_open"


class AssignmentFilterSerializer(serializers.Serializer):
    study = serializers.IntegerField(required=False, min_value=1, max_value=selectors.MAX_ID)
    pending = serializers.BooleanField(required=False, allow_null=True, default=None)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("study", OpenApiTypes.INT, description="Only this study (id)"),
            OpenApiParameter(
                "pending", OpenApiTypes.BOOL, description="true: not yet judged; false: judged"
            ),
        ]
    )
)
class AssignmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your own assignments, in your order, addressed by their opaque token."""

    authentication_classes = AUTHENTICATION_CLASSES
    permission_classes = [IsAuthenticated]
    lookup_field = "token"
    lookup_value_regex = r"[A-Za-z0-9_\-]+"

    def get_queryset(self) -> QuerySet:
        queryset = selectors.assignments_for_rater(rater=self.request.user)
        if self.action != "list":
            return queryset
        # Listing is asking for work: in an adaptive study it draws the rater's next item.
        allocation_for_rater(rater=self.request.user)
        params = AssignmentFilterSerializer(data=self.request.query_params.dict())
        params.is_valid(raise_exception=True)
        if (study_id := params.validated_data.get("study")) is not None:
            queryset = queryset.filter(comparison__study_id=study_id)
        if (pending := params.validated_data.get("pending")) is not None:
            queryset = queryset.filter(judgment__isnull=pending)
        return queryset

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        # The browsable API builds its PUT form for the judgment endpoint from this.
        if self.action == "judgment":
            return JudgmentInputSerializer
        return BlindAssignmentSerializer

    def get_throttles(self) -> list[BaseThrottle]:
        # Only judgment writes are rate limited; reading one's queue is not.
        if self.action == "judgment" and self.request.method == "PUT":
            return [JudgmentRateThrottle()]
        return super().get_throttles()

    @extend_schema(
        methods=["GET"],
        summary="Your judgment on this item",
        responses={200: OwnJudgmentSerializer},
    )
    @extend_schema(
        methods=["PUT"],
        summary="Submit or revise your judgment (a = the left response, b = the right)",
        request=JudgmentInputSerializer,
        responses={200: OwnJudgmentSerializer, 201: OwnJudgmentSerializer},
    )
    @action(detail=True, methods=["get", "put"])
    def judgment(self, request: Request, token: str | None = None) -> Response:
        assignment = self.get_object()
        if request.method == "GET":
            judgment = Judgment.objects.filter(assignment=assignment).first()
            if judgment is None:
                raise Http404(ERROR_NO_JUDGMENT)
            return Response(OwnJudgmentSerializer(judgment).data)

        study = assignment.comparison.study
        data = JudgmentInputSerializer(data=request.data, context={"study": study})
        data.is_valid(raise_exception=True)
        existed = Judgment.objects.filter(assignment=assignment).exists()
        try:
            judgment = judgment_submit(
                assignment=assignment, rater=request.user, **data.validated_data
            )
        except JudgmentError as exc:
            if exc.code == NOT_YOURS:
                raise Http404 from exc
            if exc.code == NOT_OPEN:
                raise StudyNotOpen(str(exc)) from exc
            raise ValidationError({"non_field_errors": [str(exc)]}) from exc
        return Response(
            OwnJudgmentSerializer(judgment).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )
