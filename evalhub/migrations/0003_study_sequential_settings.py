"""Studies can stop themselves once decided: the self-stop setting, the equivalence margin of
the sequential verdict, and the number of judgments at which a study stopped itself."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("evalhub", "0002_systems_known_by_fields"),
    ]

    operations = [
        migrations.AddField(
            model_name="study",
            name="stop_when_decided",
            field=models.BooleanField(
                default=False, help_text="Pause the study once the sequential verdict is reached"
            ),
        ),
        migrations.AddField(
            model_name="study",
            name="equivalence_margin",
            field=models.FloatField(
                default=0.05,
                help_text=(
                    "Win rates within 50 % ± this count as equivalent; 0 for no equivalence verdict"
                ),
            ),
        ),
        migrations.AddField(
            model_name="study",
            name="stopped_at",
            field=models.PositiveIntegerField(
                blank=True,
                null=True,
                help_text="Judgments when the study stopped itself, decided; empty otherwise",
            ),
        ),
        migrations.AddConstraint(
            model_name="study",
            constraint=models.CheckConstraint(
                condition=models.Q(("equivalence_margin__gte", 0), ("equivalence_margin__lt", 0.5)),
                name="study_margin_in_range",
            ),
        ),
    ]
