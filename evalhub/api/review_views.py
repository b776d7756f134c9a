"""The reviewer's endpoints, as blind as the review pages: a study's queue of comparisons where
raters split or one flagged it, one comparison in the caller's own A/B frame with every rater's
judgment translated into it, and the final call. Reviewers and managers only (403 for anyone
else, before any lookup); a token outside the caller's queue is a 404."""

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalhub.api.permissions import AUTHENTICATION_CLASSES
from evalhub.forms.rating import CHOICE_BUTTONS
from evalhub.models import Adjudication, Comparison, Study, StudyStatus
from evalhub.roles import is_manager, is_reviewer
from evalhub.selectors.review import (
    Disputed,
    disputed_comparisons,
    review_find,
    review_item,
    review_queue,
)
from evalhub.services.adjudication import (
    ERROR_FINAL_CALL,
    MAX_NOTE,
    AdjudicationError,
    adjudication_submit,
)


class IsReviewer(BasePermission):
    message = "Only reviewers and managers may use this endpoint."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_reviewer(request.user) or is_manager(request.user)


class QueueEntrySerializer(serializers.Serializer):
    token = serializers.CharField()
    number = serializers.IntegerField()
    reasons = serializers.CharField(help_text='"raters split", "flagged", or both')
    judgments = serializers.IntegerField()
    decided = serializers.BooleanField(help_text="Whether a final call has been made")


class ReviewJudgmentSerializer(serializers.Serializer):
    rater = serializers.CharField(help_text='"Rater 1", … in the order they judged it')
    choice = serializers.CharField(help_text="a, b, tie, both_bad or skip, in your A/B frame")
    comment = serializers.CharField()
    flag_reason = serializers.CharField()
    scores = serializers.SerializerMethodField()

    def get_scores(self, judgment) -> dict[str, dict[str, float | None]]:
        return {name: {"a": a, "b": b} for name, a, b in judgment.scores}


class ReviewItemSerializer(serializers.Serializer):
    token = serializers.CharField()
    number = serializers.IntegerField()
    total = serializers.IntegerField()
    reasons = serializers.CharField()
    messages = serializers.ListField(child=serializers.DictField())
    reference = serializers.CharField()
    responses = serializers.SerializerMethodField()
    judgments = ReviewJudgmentSerializer(many=True)
    final_call = serializers.SerializerMethodField()

    def get_responses(self, item) -> dict[str, str]:
        return {"a": item.responses[0].text, "b": item.responses[1].text}

    def get_final_call(self, item) -> dict[str, str] | None:
        return {"choice": item.choice, "note": item.note} if item.choice else None


class FinalCallSerializer(serializers.Serializer):
    choice = serializers.ChoiceField(
        choices=[value for value, _, _ in CHOICE_BUTTONS],
        help_text="a (the response given as a), b, tie or both_bad",
        error_messages={"invalid_choice": ERROR_FINAL_CALL, "required": ERROR_FINAL_CALL},
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=MAX_NOTE)


class _ReviewView(APIView):
    authentication_classes = AUTHENTICATION_CLASSES
    permission_classes = [IsAuthenticated, IsReviewer]

    def study(self, pk: int) -> Study:
        return get_object_or_404(Study.objects.exclude(status=StudyStatus.DRAFT), pk=pk)

    def disputed(self, study: Study, token: str) -> tuple[list[Disputed], Disputed]:
        """The caller's queue and the entry ``token`` addresses in it; 404 for any other."""
        queue = disputed_comparisons(study=study, reviewer=self.request.user)
        disputed = review_find(queue=queue, token=token)
        if disputed is None:
            raise Http404
        return queue, disputed


class ReviewQueueView(_ReviewView):
    @extend_schema(
        summary="Your review queue in a study: comparisons where raters split or one flagged it",
        responses={200: QueueEntrySerializer(many=True)},
    )
    def get(self, request: Request, pk: int) -> Response:
        queue = review_queue(study=self.study(pk), reviewer=request.user)
        return Response(QueueEntrySerializer(queue, many=True).data)


class ReviewItemView(_ReviewView):
    @extend_schema(
        summary="One comparison to settle, in your A/B frame, with the raters' judgments",
        responses={200: ReviewItemSerializer},
    )
    def get(self, request: Request, pk: int, token: str) -> Response:
        study = self.study(pk)
        queue, disputed = self.disputed(study, token)
        item = review_item(study=study, queue=queue, disputed=disputed)
        return Response(ReviewItemSerializer(item).data)


class FinalCallView(_ReviewView):
    @extend_schema(
        summary="Make or revise the final call (a = the response given to you as a)",
        request=FinalCallSerializer,
        responses={200: FinalCallSerializer, 201: FinalCallSerializer},
    )
    def put(self, request: Request, pk: int, token: str) -> Response:
        study = self.study(pk)
        queue, disputed = self.disputed(study, token)
        data = FinalCallSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        existed = Adjudication.objects.filter(comparison_id=disputed.comparison).exists()
        try:
            adjudication_submit(
                comparison=get_object_or_404(Comparison, pk=disputed.comparison),
                reviewer=request.user,
                left_is_a=disputed.left_is_a,
                **data.validated_data,
            )
        except AdjudicationError as exc:
            raise ValidationError({"non_field_errors": [str(exc)]}) from exc
        item = review_item(study=study, queue=queue, disputed=disputed)
        body = {"choice": item.choice, "note": item.note}
        return Response(body, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)
