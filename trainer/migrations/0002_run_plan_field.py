"""The resolved plan of a run gets its own field: it used to sit inside ``hyperparameters`` under
the key "plan", where every reader of the config had to filter it out again."""

from django.db import migrations, models

OLD_KEY = "plan"


def plan_out_of_hyperparameters(apps, schema_editor):
    FineTuneRun = apps.get_model("trainer", "FineTuneRun")
    for run in FineTuneRun.objects.filter(hyperparameters__has_key=OLD_KEY):
        run.plan = run.hyperparameters.pop(OLD_KEY)
        run.save(update_fields=["plan", "hyperparameters"])


def plan_into_hyperparameters(apps, schema_editor):
    FineTuneRun = apps.get_model("trainer", "FineTuneRun")
    for run in FineTuneRun.objects.exclude(plan={}):
        run.hyperparameters = {**run.hyperparameters, OLD_KEY: run.plan}
        run.save(update_fields=["hyperparameters"])


class Migration(migrations.Migration):
    dependencies = [
        ("trainer", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="finetunerun",
            name="plan",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="What the engine resolved at start: steps, evaluation interval, "
                "examples kept",
            ),
        ),
        migrations.RunPython(plan_out_of_hyperparameters, plan_into_hyperparameters),
    ]
