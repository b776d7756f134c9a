"""The rater's endpoints: their own assignments, blinded, and their judgment on each. The
queryset is always scoped to ``request.user`` (managers included: a manager reads other raters'
work unblinded through /api/comparisons/ and /api/judgments/), so someone else's token is a 404."""

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.permissions import IsAuthenticated

from evalhub.api import selectors
from evalhub.api.blinded import BlindAssignmentSerializer
from evalhub.api.permissions import AUTHENTICATION_CLASSES


class AssignmentFilterSerializer(serializers.Serializer):
    study = serializers.IntegerField(required=False, min_value=1)
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
    serializer_class = BlindAssignmentSerializer
    lookup_field = "token"
    lookup_value_regex = r"[A-Za-z0-9_\-]+"

    def get_queryset(self) -> QuerySet:
        queryset = selectors.assignments_for_rater(rater=self.request.user)
        if self.action != "list":
            return queryset
        params = AssignmentFilterSerializer(data=self.request.query_params.dict())
        params.is_valid(raise_exception=True)
        if (study_id := params.validated_data.get("study")) is not None:
            queryset = queryset.filter(comparison__study_id=study_id)
        if (pending := params.validated_data.get("pending")) is not None:
            queryset = queryset.filter(judgment__isnull=pending)
        return queryset
