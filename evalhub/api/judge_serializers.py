"""Model judges and their runs in the API. A judge names the environment variable that holds
its endpoint's key, never the key."""

from rest_framework import serializers

from evalhub.api.form_input import form_serializer
from evalhub.forms.judges import JudgeForm
from evalhub.models import Judge, JudgeRun
from evalhub.selectors.judging import DEFAULT_JUDGE

JudgeCreateSerializer = form_serializer(JudgeForm, name="JudgeCreateSerializer")


class JudgeSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Judge
        fields = [
            "id",
            "name",
            "backend",
            "model",
            "base_url",
            "api_key_env",
            "use_reference",
            "max_tokens",
            "temperature",
            "timeout_s",
            "max_retries",
            "concurrency",
            "token_budget",
            "created_by",
            "created_at",
        ]


class JudgeDetailSerializer(JudgeSerializer):
    """The judge with its prompt template ("" for the built-in one)."""

    class Meta(JudgeSerializer.Meta):
        fields = [*JudgeSerializer.Meta.fields, "template"]


class JudgeRunSerializer(serializers.ModelSerializer):
    judge = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = JudgeRun
        fields = [
            "id",
            "judge",
            "study",
            "status",
            "verdicts_done",
            "tokens_used",
            "errors",
            "error",
            "worker",
            "heartbeat_at",
            "created_at",
            "started_at",
            "finished_at",
        ]


class StudyJudgeSerializer(serializers.Serializer):
    """Which judge to run over the study; the packaged one when left out, as on the page."""

    judge = serializers.CharField(required=False, default=DEFAULT_JUDGE, help_text="A judge's name")
