"""The rater's view of an assignment, as blind as the rating page: the opaque token, the prompt,
the reference when the study shows it, the two responses as "a" (shown on the left) and "b",
the study's criteria and guidelines, and the rater's own judgment (their better answer,
``correction``, included). No system, run, model, output or comparison id, no gold flag, nothing
about other raters."""

from rest_framework import serializers

from evalhub.models import Assignment, Choice, Judgment, Study
from evalhub.services import judgments

SIDES = (Choice.A, Choice.B)

ERROR_CRITERIA_SHAPE = 'Must be an object: {"criterion": {"a": 1-5, "b": 1-5}, ...}.'


class BlindStudySerializer(serializers.ModelSerializer):
    class Meta:
        model = Study
        fields = ["id", "name", "status", "criteria", "guidelines", "show_reference"]


class OwnJudgmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Judgment
        fields = [
            "choice",
            "criterion_scores",
            "comment",
            "correction",
            "flagged",
            "flag_reason",
            "time_on_task_ms",
            "revisions",
            "created_at",
            "updated_at",
        ]


class ResponsesSerializer(serializers.Serializer):
    a = serializers.CharField(help_text="The response shown on the left")
    b = serializers.CharField(help_text="The response shown on the right")


class BlindAssignmentSerializer(serializers.ModelSerializer):
    study = BlindStudySerializer(source="comparison.study", read_only=True)
    prompt = serializers.CharField(source="comparison.prompt.text", read_only=True)
    messages = serializers.SerializerMethodField()
    reference = serializers.SerializerMethodField()
    responses = serializers.SerializerMethodField()
    judgment = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = [
            "token",
            "position",
            "study",
            "prompt",
            "messages",
            "reference",
            "responses",
            "judgment",
        ]

    def get_messages(self, assignment: Assignment) -> list[dict[str, str]]:
        """The prompt conversation (ending with the user turn), as role and content only."""
        return [
            {"role": str(m.get("role", "user")), "content": str(m.get("content", ""))}
            for m in assignment.comparison.prompt.messages
        ]

    def get_reference(self, assignment: Assignment) -> str | None:
        comparison = assignment.comparison
        return comparison.prompt.reference if comparison.study.show_reference else None

    def get_responses(self, assignment: Assignment) -> dict[str, str]:
        left, right = assignment.sides()
        return ResponsesSerializer({"a": left.text, "b": right.text}).data

    def get_judgment(self, assignment: Assignment) -> dict | None:
        judgment = getattr(assignment, "judgment", None)
        return OwnJudgmentSerializer(judgment).data if judgment else None


class JudgmentInputSerializer(serializers.Serializer):
    """What a rater sends: the choice in the terms they saw (a = left, b = right) and optional
    per-criterion 1–5 scores for each side. ``context["study"]`` supplies the criteria; the
    rules and messages are ``judgment_submit``'s, checked here too so that a 400 names the field.
    """

    choice = serializers.ChoiceField(
        choices=Choice.choices,
        help_text='"skip": no side chosen; the item is flagged and needs flag_reason',
    )
    criterion_scores = serializers.JSONField(
        required=False, default=dict, help_text='{"correctness": {"a": 4, "b": 2}, ...}'
    )
    comment = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=judgments.MAX_COMMENT
    )
    correction = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="Your own better answer to the prompt, optional. A PUT replaces the whole "
        "judgment: leaving it out removes one sent before",
    )
    flagged = serializers.BooleanField(required=False, default=False)
    flag_reason = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=judgments.MAX_FLAG_REASON
    )
    time_on_task_ms = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=0
    )

    def validate(self, attrs: dict) -> dict:
        if attrs["choice"] == Choice.SKIP and not attrs["flag_reason"].strip():
            raise serializers.ValidationError({"flag_reason": [judgments.ERROR_SKIP_REASON]})
        return attrs

    def validate_correction(self, value: str) -> str:
        if len(value) > judgments.MAX_CORRECTION:
            raise serializers.ValidationError(judgments.correction_too_long(value))
        return value

    def validate_criterion_scores(self, value: object) -> dict:
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            raise serializers.ValidationError(ERROR_CRITERIA_SHAPE)
        criteria = list(self.context["study"].criteria)
        for name, sides in value.items():
            if name not in criteria:
                raise serializers.ValidationError(
                    judgments.ERROR_UNKNOWN_CRITERION.format(name=name)
                )
            for side, score in sides.items():
                if side not in SIDES or type(score) is not int or not 1 <= score <= 5:
                    raise serializers.ValidationError(
                        judgments.ERROR_SCORE.format(value=score, name=name, side=side)
                    )
        return value
