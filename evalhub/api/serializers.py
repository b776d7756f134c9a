"""Manager-side serializers: everything unblinded (system names, runs, raters, gold answers).
Never used for a rater's own view; that lives in ``rater_serializers.py``."""

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from evalhub.analysis.rater_quality import DEFAULT_MIN_GOLD_ACCURACY, DEFAULT_MIN_MEDIAN_SECONDS
from evalhub.analysis.sequential import VERDICTS
from evalhub.api.form_input import form_serializer
from evalhub.api.rater_serializers import OwnJudgmentSerializer
from evalhub.forms.datasets import DatasetUploadForm
from evalhub.forms.runs import RunForm
from evalhub.models import (
    Allocation,
    Assignment,
    Choice,
    Comparison,
    Judgment,
    Output,
    Study,
    StudyStatus,
    System,
)
from evalhub.selectors.rater_quality import rater_quality_block
from evalhub.selectors.studies import ppi_block, sequential_block
from trainer.models import Dataset, FineTuneRun, RunMetric, Split


class DatasetSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    example_count = serializers.IntegerField(read_only=True)
    train_count = serializers.IntegerField(read_only=True)
    validation_count = serializers.IntegerField(read_only=True)
    feedback_count = serializers.IntegerField(read_only=True)
    test_count = serializers.IntegerField(read_only=True)
    pair_count = serializers.IntegerField(read_only=True, help_text="preference pairs")

    class Meta:
        model = Dataset
        fields = [
            "id",
            "name",
            "kind",
            "source_filename",
            "format",
            "content_hash",
            "split_ratios",
            "seed",
            "tokenizer",
            "lint_errors",
            "lint_warnings",
            "example_count",
            "train_count",
            "validation_count",
            "feedback_count",
            "test_count",
            "pair_count",
            "created_by",
            "created_at",
        ]


class DatasetDetailSerializer(DatasetSerializer):
    class Meta(DatasetSerializer.Meta):
        fields = [*DatasetSerializer.Meta.fields, "lint_report"]


DatasetUploadSerializer = form_serializer(DatasetUploadForm, name="DatasetUploadSerializer")


class LintIssueSerializer(serializers.Serializer):
    code = serializers.CharField()
    severity = serializers.CharField()
    message = serializers.CharField()
    lines = serializers.ListField(child=serializers.IntegerField())


class DatasetRefusedSerializer(serializers.Serializer):
    """Lint refused the file: the reason under ``file``, and the report the upload page shows."""

    file = serializers.ListField(child=serializers.CharField())
    dataset = serializers.CharField()
    counts = serializers.DictField(child=serializers.IntegerField())
    issues = LintIssueSerializer(many=True)


class RunMetricSerializer(serializers.ModelSerializer):
    class Meta:
        model = RunMetric
        fields = [
            "kind",
            "step",
            "epoch",
            "loss",
            "learning_rate",
            "grad_norm",
            "tokens_per_s",
            "reward_accuracy",
            "reward_margin",
        ]


class RunSerializer(serializers.ModelSerializer):
    dataset = serializers.SlugRelatedField(slug_field="name", read_only=True)
    base_model = serializers.SlugRelatedField(slug_field="name", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = FineTuneRun
        fields = [
            "id",
            "name",
            "status",
            "dataset",
            "base_model",
            "step",
            "total_steps",
            "epoch",
            "eta_seconds",
            "best_val_loss",
            "best_step",
            "early_stopped",
            "wall_seconds",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]


class RunDetailSerializer(RunSerializer):
    metrics = RunMetricSerializer(many=True, read_only=True)

    class Meta(RunSerializer.Meta):
        fields = [
            *RunSerializer.Meta.fields,
            "hyperparameters",
            "plan",
            "dataset_hash",
            "environment",
            "worker",
            "heartbeat_at",
            "error",
            "trainable_params",
            "total_params",
            "peak_memory_bytes",
            "adapter_path",
            "adapter_size_bytes",
            "resumed_from",
            "retry_of",
            "method",
            "from_run",
            "metrics",
        ]


RunStartSerializer = form_serializer(RunForm, name="RunStartSerializer")


class SystemSerializer(serializers.ModelSerializer):
    base_model = serializers.SlugRelatedField(slug_field="name", read_only=True)
    output_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = System
        fields = [
            "id",
            "name",
            "kind",
            "base_model",
            "run",
            "decoding",
            "description",
            "output_count",
            "created_at",
        ]


class SystemDetailSerializer(SystemSerializer):
    metric_means = serializers.DictField(child=serializers.FloatField(), read_only=True)

    class Meta(SystemSerializer.Meta):
        fields = [*SystemSerializer.Meta.fields, "metric_means"]


class SystemRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = System
        fields = ["id", "name", "kind"]


class StudySerializer(serializers.ModelSerializer):
    systems = SystemRefSerializer(many=True, read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    comparison_count = serializers.IntegerField(read_only=True)
    assignment_count = serializers.IntegerField(read_only=True)
    judgment_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Study
        fields = [
            "id",
            "name",
            "status",
            "run",
            "systems",
            "criteria",
            "guidelines",
            "show_reference",
            "overlap",
            "seed",
            "stop_when_decided",
            "equivalence_margin",
            "raters_at_large",
            "allocation",
            "min_gold_accuracy",
            "min_median_seconds",
            "stopped_at",
            "comparison_count",
            "assignment_count",
            "judgment_count",
            "created_by",
            "created_at",
        ]


class OutputSerializer(serializers.ModelSerializer):
    system = SystemRefSerializer(read_only=True)

    class Meta:
        model = Output
        fields = ["id", "system", "text", "token_count", "latency_ms", "metrics", "flags"]


class ComparisonAssignmentSerializer(serializers.ModelSerializer):
    rater = serializers.SlugRelatedField(slug_field="username", read_only=True)
    left_output = serializers.PrimaryKeyRelatedField(read_only=True)
    judgment = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = ["id", "rater", "position", "left_output", "judgment"]

    def get_judgment(self, assignment: Assignment) -> dict | None:
        judgment = getattr(assignment, "judgment", None)
        return OwnJudgmentSerializer(judgment).data if judgment else None


class ComparisonSerializer(serializers.ModelSerializer):
    prompt = serializers.SerializerMethodField()
    output_a = OutputSerializer(read_only=True)
    output_b = OutputSerializer(read_only=True)
    assignments = ComparisonAssignmentSerializer(many=True, read_only=True)

    class Meta:
        model = Comparison
        fields = [
            "id",
            "study",
            "prompt",
            "output_a",
            "output_b",
            "is_gold",
            "gold_answer",
            "assignments",
        ]

    def get_prompt(self, comparison: Comparison) -> dict:
        prompt = comparison.prompt
        return {
            "id": prompt.id,
            "text": prompt.text,
            "messages": prompt.messages,
            "reference": prompt.reference,
        }


class JudgmentSerializer(OwnJudgmentSerializer):
    """A judgment with its unblinding: which system was on each side, and which one won."""

    rater = serializers.CharField(source="assignment.rater.username", read_only=True)
    study = serializers.IntegerField(source="assignment.comparison.study_id", read_only=True)
    comparison = serializers.IntegerField(source="assignment.comparison_id", read_only=True)
    left_system = serializers.SerializerMethodField()
    right_system = serializers.SerializerMethodField()
    preferred_system = serializers.SerializerMethodField()

    class Meta(OwnJudgmentSerializer.Meta):
        fields = [
            "id",
            "study",
            "comparison",
            "rater",
            "left_system",
            "right_system",
            "preferred_system",
            *OwnJudgmentSerializer.Meta.fields,
        ]

    def get_left_system(self, judgment: Judgment) -> str:
        return judgment.assignment.sides()[0].system.name

    def get_right_system(self, judgment: Judgment) -> str:
        return judgment.assignment.sides()[1].system.name

    def get_preferred_system(self, judgment: Judgment) -> str | None:
        """The winner in storage terms; ``None`` for a tie or "both bad"."""
        left, right = judgment.assignment.sides()
        return {Choice.A: left.system.name, Choice.B: right.system.name}.get(judgment.choice)


class StudyCreateSerializer(serializers.Serializer):
    """Input of ``study_create``: every pair of ``systems`` on every chosen prompt becomes a
    comparison; ``raters`` get their blinded assignments at once."""

    name = serializers.CharField(max_length=200)
    systems = serializers.PrimaryKeyRelatedField(
        many=True, queryset=System.objects.all(), help_text="System ids, two or more"
    )
    run = serializers.PrimaryKeyRelatedField(
        queryset=FineTuneRun.objects.all(), required=False, allow_null=True, default=None
    )
    prompts = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="How many prompts; null for all"
    )
    split = serializers.ChoiceField(
        choices=Split.choices,
        required=False,
        default=Split.TEST,
        help_text="The split whose prompts the study is on: test (judgments decide, never "
        "train) or feedback (judgments may train)",
    )
    raters = serializers.SlugRelatedField(
        many=True,
        slug_field="username",
        queryset=get_user_model().objects.all(),
        required=False,
        default=list,
    )
    overlap = serializers.IntegerField(required=False, default=2, help_text="Raters per item")
    criteria = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    guidelines = serializers.CharField(required=False, allow_blank=True, default="")
    show_reference = serializers.BooleanField(required=False, default=False)
    seed = serializers.IntegerField(required=False, allow_null=True, default=None)
    stop_when_decided = serializers.BooleanField(
        required=False, default=False, help_text="Pause the study once its verdict is reached"
    )
    raters_at_large = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Verdict about raters at large, not only the study's own (5+ raters)",
    )
    allocation = serializers.ChoiceField(
        choices=Allocation.choices,
        required=False,
        default=Allocation.UNIFORM,
        help_text="uniform, or adaptive: each rater's next item drawn where it says most",
    )
    equivalence_margin = serializers.FloatField(
        required=False,
        default=0.05,
        help_text="Win rates within 0.5 ± this are 'equivalent'; 0 for no such verdict",
    )
    min_gold_accuracy = serializers.FloatField(
        required=False,
        default=DEFAULT_MIN_GOLD_ACCURACY,
        help_text="A rater with a lower share of gold items right (once they have judged 3) is "
        "left out of the verdict; 0 checks nothing",
    )
    min_median_seconds = serializers.FloatField(
        required=False,
        default=DEFAULT_MIN_MEDIAN_SECONDS,
        help_text="A rater whose median seconds per item is lower is left out of the verdict; "
        "0 checks nothing",
    )
    gold = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        allow_null=True,
        default=None,
        help_text='Gold items: {"prompt", "better", "worse"[, "reference"]}',
    )


class IntervalSerializer(serializers.Serializer):
    low = serializers.FloatField()
    high = serializers.FloatField()
    method = serializers.CharField()


class SequentialSerializer(serializers.Serializer):
    """The always-valid interval and verdict for the monitored pair (adapter vs base)."""

    adapter = serializers.CharField()
    base = serializers.CharField()
    verdict = serializers.ChoiceField(choices=VERDICTS)
    judgments = serializers.IntegerField()
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    ties = serializers.IntegerField()
    estimate = serializers.FloatField(allow_null=True)
    interval = IntervalSerializer()
    alpha = serializers.FloatField()
    margin = serializers.FloatField()
    decided_at = serializers.IntegerField(allow_null=True)
    judgments_needed = serializers.IntegerField(allow_null=True)
    judgments_left = serializers.IntegerField(
        help_text="Judgments the study can still get towards this verdict: an adaptive study's "
        "budget left, a uniform study's unjudged assignments of the pair (gated raters' aside)"
    )
    method = serializers.CharField()
    ties_handled = serializers.CharField()
    raters_at_large = serializers.BooleanField()
    units = serializers.IntegerField(
        help_text="Comparisons complete (uniform) or draws complete (adaptive) in the interval"
    )
    stop_when_decided = serializers.BooleanField()
    stopped_at = serializers.IntegerField(allow_null=True)
    allocation = serializers.ChoiceField(choices=Allocation.choices)


class PredictionPoweredSerializer(serializers.Serializer):
    """The prediction-powered interval for the monitored pair's win rate beside the experts'
    alone; without ``reason`` the numbers are there, with it they are absent."""

    adapter = serializers.CharField()
    base = serializers.CharField()
    signal = serializers.CharField(allow_null=True)
    signal_kind = serializers.ChoiceField(choices=["metric", "judge"])
    labelled = serializers.IntegerField()
    unlabelled = serializers.IntegerField()
    alpha = serializers.FloatField()
    reason = serializers.CharField(allow_null=True)
    estimate = serializers.FloatField(required=False)
    interval = IntervalSerializer(required=False)
    expert_estimate = serializers.FloatField(required=False)
    expert_interval = IntervalSerializer(required=False)
    width_ratio = serializers.FloatField(required=False)
    signal_correlation = serializers.FloatField(required=False, allow_null=True)


class RaterQualityRowSerializer(serializers.Serializer):
    rater = serializers.CharField()
    judgments = serializers.IntegerField()
    gold_judged = serializers.IntegerField()
    gold_correct = serializers.IntegerField()
    gold_accuracy = serializers.FloatField(allow_null=True)
    median_seconds = serializers.FloatField(allow_null=True)
    competence = serializers.FloatField(
        allow_null=True, help_text="Chance of naming an item's true verdict (one-coin Dawid–Skene)"
    )
    weight = serializers.FloatField(
        allow_null=True,
        help_text="Log odds of naming the truth against one wrong verdict; 0 at chance",
    )
    far_below = serializers.BooleanField(help_text="Competence far below the other raters' median")
    excluded = serializers.BooleanField(help_text="Left out of the verdict by the study's gate")
    reasons = serializers.ListField(child=serializers.CharField())


class RaterGateSerializer(serializers.Serializer):
    min_gold_accuracy = serializers.FloatField()
    min_gold_judged = serializers.IntegerField()
    min_median_seconds = serializers.FloatField()


class CountedWinRateSerializer(serializers.Serializer):
    judgments = serializers.IntegerField()
    win_rate = serializers.FloatField(allow_null=True)
    interval = serializers.DictField(
        help_text="Item-clustered bootstrap {low, high, method}, or why there is none: "
        "{insufficient, reason, n, needed}"
    )


class RaterVerdictsSerializer(serializers.Serializer):
    """The monitored pair's win rate as the verdict counts it (gate applied), the same
    judgments weighted by competence, and every rater's; the verdict with and without the
    raters the gate leaves out."""

    adapter = serializers.CharField()
    base = serializers.CharField()
    counted = CountedWinRateSerializer()
    weighted = CountedWinRateSerializer()
    all = CountedWinRateSerializer()
    verdict_counted = serializers.ChoiceField(choices=VERDICTS)
    verdict_all = serializers.ChoiceField(choices=VERDICTS)


class RaterQualitySerializer(serializers.Serializer):
    model = serializers.CharField()
    far_below_margin = serializers.FloatField()
    gate = RaterGateSerializer()
    raters = RaterQualityRowSerializer(many=True)
    excluded = serializers.ListField(child=serializers.CharField())
    far_below = serializers.ListField(child=serializers.CharField())
    pair = RaterVerdictsSerializer(allow_null=True)


class StudyDetailSerializer(StudySerializer):
    sequential = serializers.SerializerMethodField()
    ppi = serializers.SerializerMethodField()
    rater_quality = serializers.SerializerMethodField()

    class Meta(StudySerializer.Meta):
        fields = [*StudySerializer.Meta.fields, "sequential", "ppi", "rater_quality"]

    @extend_schema_field(RaterQualitySerializer())
    def get_rater_quality(self, study: Study) -> dict:
        return rater_quality_block(study=study)

    @extend_schema_field(SequentialSerializer(allow_null=True))
    def get_sequential(self, study: Study) -> dict | None:
        return sequential_block(study=study)

    @extend_schema_field(PredictionPoweredSerializer(allow_null=True))
    def get_ppi(self, study: Study) -> dict | None:
        return ppi_block(study=study)


class StudyStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=StudyStatus.choices)


class StudyRatersSerializer(serializers.Serializer):
    raters = serializers.SlugRelatedField(
        many=True, slug_field="username", queryset=get_user_model().objects.all()
    )
    overlap = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Raise the overlap too"
    )


class StudyRatersResultSerializer(serializers.Serializer):
    assignments_created = serializers.IntegerField()
    study = StudySerializer()
