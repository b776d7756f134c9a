from django.contrib import admin

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
