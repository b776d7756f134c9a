"""A draw keeps the calibrated prediction it was made with (adaptive allocation now calibrates
the metric from the judgments before each draw). Draws made before took the metric's
prediction as it was: theirs is filled in from their comparison and their study."""

from django.db import migrations, models


def fill_predictions(apps, schema_editor):
    Draw = apps.get_model("evalhub", "Draw")
    Comparison = apps.get_model("evalhub", "Comparison")
    for study_id in Draw.objects.values_list("study_id", flat=True).distinct():
        predictions = {
            pk: 0.5 if value is None else value
            for pk, value in Comparison.objects.filter(
                study_id=study_id, is_gold=False
            ).values_list("pk", "prediction")
        }
        centre = sum(predictions.values()) / len(predictions)
        for draw in Draw.objects.filter(study_id=study_id).select_related("assignment"):
            draw.prediction = predictions[draw.assignment.comparison_id]
            draw.centre = centre
            draw.save(update_fields=["prediction", "centre"])


class Migration(migrations.Migration):
    dependencies = [
        ("evalhub", "0011_study_signal"),
    ]

    operations = [
        migrations.AddField(
            model_name="draw",
            name="prediction",
            field=models.FloatField(default=0.5),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="draw",
            name="centre",
            field=models.FloatField(default=0.5),
            preserve_default=False,
        ),
        migrations.RunPython(fill_predictions, migrations.RunPython.noop),
    ]
