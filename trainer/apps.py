from django.apps import AppConfig


class TrainerConfig(AppConfig):
    name = "trainer"
    verbose_name = "Training"
    default_auto_field = "django.db.models.BigAutoField"
