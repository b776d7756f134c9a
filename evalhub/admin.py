"""The Django admin, for every model of both apps: trainer is a library with no web code, so its
models are registered here, in the one web layer."""

from django.contrib import admin

from evalhub.models import (
    Adjudication,
    Assignment,
    Comparison,
    Draw,
    Judge,
    JudgeRun,
    JudgeVerdict,
    Judgment,
    Output,
    PreferenceSet,
    Prompt,
    Study,
    System,
)
from trainer.models import BaseModel, Dataset, Example, FineTuneRun, RunMetric


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "format", "lint_errors", "lint_warnings", "created_at"]
    search_fields = ["name", "source_filename"]
    readonly_fields = ["content_hash", "lint_report", "created_at"]


@admin.register(Example)
class ExampleAdmin(admin.ModelAdmin):
    list_display = ["dataset", "index", "source_line", "split", "token_count"]
    list_filter = ["split", "dataset"]


@admin.register(BaseModel)
class BaseModelAdmin(admin.ModelAdmin):
    list_display = ["name", "source", "parameter_count", "created_at"]


class RunMetricInline(admin.TabularInline):
    model = RunMetric
    extra = 0
    readonly_fields = [
        "kind",
        "step",
        "epoch",
        "loss",
        "learning_rate",
        "grad_norm",
        "tokens_per_s",
    ]
    can_delete = False


@admin.register(FineTuneRun)
class FineTuneRunAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "dataset",
        "base_model",
        "status",
        "step",
        "total_steps",
        "best_val_loss",
        "adapter_size_bytes",
        "created_at",
    ]
    list_filter = ["status"]
    readonly_fields = ["hyperparameters", "plan", "environment", "error", "dataset_hash"]
    inlines = [RunMetricInline]


@admin.register(System)
class SystemAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "base_model", "run", "created_at"]
    list_filter = ["kind"]


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["id", "dataset", "example"]
    list_filter = ["dataset"]


@admin.register(Output)
class OutputAdmin(admin.ModelAdmin):
    list_display = ["id", "system", "prompt", "token_count", "latency_ms"]
    list_filter = ["system"]


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "allocation", "overlap", "show_reference", "created_at"]
    list_filter = ["status", "allocation"]
    filter_horizontal = ["systems", "raters"]


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = ["id", "study", "prompt", "output_a", "output_b", "is_gold"]
    list_filter = ["study", "is_gold"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "comparison", "rater", "position", "left_output"]
    list_filter = ["rater"]


@admin.register(Draw)
class DrawAdmin(admin.ModelAdmin):
    """Draws are the adaptive verdict's record of what was asked with which probability:
    read-only, since changing one would change the verdict after the fact."""

    list_display = ["number", "study", "assignment", "weight", "created_at"]
    list_filter = ["study"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ["id", "assignment", "choice", "flagged", "time_on_task_ms", "updated_at"]
    list_filter = ["choice", "flagged"]


@admin.register(Adjudication)
class AdjudicationAdmin(admin.ModelAdmin):
    list_display = ["id", "comparison", "reviewer", "verdict", "revisions", "updated_at"]
    list_filter = ["verdict"]


@admin.register(Judge)
class JudgeAdmin(admin.ModelAdmin):
    list_display = ["name", "backend", "model", "base_url", "concurrency", "token_budget"]
    list_filter = ["backend"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records of what happened (a judge's runs and verdicts, a preference set built under its
    rules): changing one would change a calibration or a training set after the fact."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(JudgeRun)
class JudgeRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "judge", "study", "status", "verdicts_done", "tokens_used", "created_at"]
    list_filter = ["status", "judge"]


@admin.register(JudgeVerdict)
class JudgeVerdictAdmin(ReadOnlyAdmin):
    list_display = ["id", "judge", "comparison", "order", "choice", "latency_ms"]
    list_filter = ["judge", "order", "choice"]


@admin.register(PreferenceSet)
class PreferenceSetAdmin(ReadOnlyAdmin):
    """A set is what a study's judgments gave under its rules; build a new version instead."""

    list_display = ["name", "version", "study", "pair_count", "sft_count", "created_at"]
