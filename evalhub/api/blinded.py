"""The rater's view of an assignment, as blind as the rating page: the opaque token, the prompt,
the reference when the study shows it, the two responses as "a" (shown on the left) and "b",
the study's criteria and guidelines, and the rater's own judgment. No system, run, model, output
or comparison id, no gold flag, nothing about other raters."""

from rest_framework import serializers

from evalhub.models import Assignment, Choice, Judgment, Output, Study

CRITERION_SCORE_MIN = 1
CRITERION_SCORE_MAX = 5
SIDES = ("a", "b")

ERROR_CRITERIA_NOT_OBJECT = 'Must be an object: {"criterion": {"a": 1-5, "b": 1-5}}.'
ERROR_UNKNOWN_CRITERION = "Unknown criterion {name!r}; this study rates: {known}."
ERROR_CRITERION_SIDES = 'Criterion {name!r} must be an object with keys among "a" and "b".'
ERROR_CRITERION_SCORE = "Score for {name!r} side {side!r} must be a whole number from 1 to 5."


def displayed_sides(assignment: Assignment) -> tuple[Output, Output]:
    """(left, right) as this rater sees them; ``output_a``/``output_b`` is only storage order."""
    comparison = assignment.comparison
    left = assignment.left_output
    right = comparison.output_b if left.id == comparison.output_a_id else comparison.output_a
    return left, right


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
    reference = serializers.SerializerMethodField()
    responses = serializers.SerializerMethodField()
    judgment = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = ["token", "position", "study", "prompt", "reference", "responses", "judgment"]

    def get_reference(self, assignment: Assignment) -> str | None:
        comparison = assignment.comparison
        return comparison.prompt.reference if comparison.study.show_reference else None

    def get_responses(self, assignment: Assignment) -> dict[str, str]:
        left, right = displayed_sides(assignment)
        return ResponsesSerializer({"a": left.text, "b": right.text}).data

    def get_judgment(self, assignment: Assignment) -> dict | None:
        judgment = getattr(assignment, "judgment", None)
        return OwnJudgmentSerializer(judgment).data if judgment else None


class JudgmentInputSerializer(serializers.Serializer):
    """What a rater sends: the choice in the terms they saw (a = left, b = right) and optional
    per-criterion 1–5 scores for each side. ``context["study"]`` supplies the criteria."""

    choice = serializers.ChoiceField(choices=Choice.choices)
    criterion_scores = serializers.JSONField(required=False, default=dict)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    flagged = serializers.BooleanField(required=False, default=False)
    flag_reason = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=200
    )
    time_on_task_ms = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=0, max_value=2**31 - 1
    )

    def validate_criterion_scores(self, value: object) -> dict:
        if not isinstance(value, dict):
            raise serializers.ValidationError(ERROR_CRITERIA_NOT_OBJECT)
        known = list(self.context["study"].criteria)
        for name, scores in value.items():
            if name not in known:
                raise serializers.ValidationError(
                    ERROR_UNKNOWN_CRITERION.format(name=name, known=", ".join(known) or "none")
                )
            if not isinstance(scores, dict) or not set(scores) <= set(SIDES):
                raise serializers.ValidationError(ERROR_CRITERION_SIDES.format(name=name))
            for side, score in scores.items():
                valid = isinstance(score, int) and not isinstance(score, bool)
                if not valid or not CRITERION_SCORE_MIN <= score <= CRITERION_SCORE_MAX:
                    raise serializers.ValidationError(
                        ERROR_CRITERION_SCORE.format(name=name, side=side)
                    )
        return value
