from django.apps import AppConfig


class EvalhubConfig(AppConfig):
    name = "evalhub"
    verbose_name = "Evaluation"
    default_auto_field = "django.db.models.BigAutoField"
