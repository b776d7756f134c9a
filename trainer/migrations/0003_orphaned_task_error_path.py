"""Task rows failed as orphaned before RunOrphaned existed name a class that never did, so
reading their error raised ImportError; point them at the real class."""

from django.db import migrations

BROKEN = "trainer.services.runs.RunOrphaned"
REAL = "trainer.services.run_queue.RunOrphaned"


def forward(apps, schema_editor):
    DBTaskResult = apps.get_model("django_tasks_database", "DBTaskResult")
    DBTaskResult.objects.filter(exception_class_path=BROKEN).update(exception_class_path=REAL)


class Migration(migrations.Migration):
    dependencies = [
        ("trainer", "0002_run_plan_field"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
