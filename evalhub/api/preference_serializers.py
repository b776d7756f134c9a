"""Preference sets in the API: the list, one set with its rules, and the build input."""

from rest_framework import serializers

from evalhub.models import PreferenceSet, Study
from evalhub.selectors.preferences import LAYOUTS, PAIRS
from evalhub.services.preferences import MAX_VALIDATION_SHARE


class PreferenceSetSerializer(serializers.ModelSerializer):
    study_name = serializers.CharField(source="study.name", read_only=True)
    dataset = serializers.SlugRelatedField(slug_field="name", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = PreferenceSet
        fields = [
            "id",
            "name",
            "version",
            "study",
            "study_name",
            "dataset",
            "pair_count",
            "sft_count",
            "created_by",
            "created_at",
        ]


class PreferenceSetDetailSerializer(PreferenceSetSerializer):
    """The set with its rules: what each left out, the gate, the raters, the held-out share."""

    judgments = serializers.SerializerMethodField(help_text="Judgment ids the set was built from")
    content_hash = serializers.CharField(source="dataset.content_hash", read_only=True)

    class Meta(PreferenceSetSerializer.Meta):
        fields = [*PreferenceSetSerializer.Meta.fields, "content_hash", "rules", "judgments"]

    def get_judgments(self, preference_set: PreferenceSet) -> list[int]:
        return sorted(preference_set.judgments.values_list("pk", flat=True))


class PreferenceSetBuildSerializer(serializers.Serializer):
    """Input of ``preference_set_build``: the next version of ``name`` from ``study``."""

    study = serializers.PrimaryKeyRelatedField(
        queryset=Study.objects.all(), help_text="A study on feedback prompts"
    )
    name = serializers.CharField(max_length=80, help_text="Each build is its next version")
    validation_share = serializers.FloatField(
        required=False,
        default=0.1,
        min_value=0,
        max_value=MAX_VALIDATION_SHARE,
        help_text="Share of rows held out, by prompt, for DPO's early stopping",
    )
    seed = serializers.IntegerField(required=False, default=0)
    correction_pairs = serializers.BooleanField(
        required=False,
        default=True,
        help_text="A rater's better answer is also chosen over each answer they saw",
    )


class PreferenceDownloadSerializer(serializers.Serializer):
    layout = serializers.ChoiceField(choices=LAYOUTS, required=False, default=PAIRS)
