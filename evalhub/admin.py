from django.contrib import admin

from evalhub.models import Assignment, Comparison, Judgment, Output, Prompt, Study, System


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
    list_display = ["name", "status", "overlap", "show_reference", "created_at"]
    list_filter = ["status"]
    filter_horizontal = ["systems"]


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = ["id", "study", "prompt", "output_a", "output_b", "is_gold"]
    list_filter = ["study", "is_gold"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "comparison", "rater", "position", "left_output"]
    list_filter = ["rater"]


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ["id", "assignment", "choice", "flagged", "time_on_task_ms", "updated_at"]
    list_filter = ["choice", "flagged"]
