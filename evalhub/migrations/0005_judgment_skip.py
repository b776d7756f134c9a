from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("evalhub", "0004_study_raters_at_large"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="judgment",
            name="judgment_choice_valid",
        ),
        migrations.AlterField(
            model_name="judgment",
            name="choice",
            field=models.CharField(
                choices=[
                    ("a", "A is better"),
                    ("b", "B is better"),
                    ("tie", "tie"),
                    ("both_bad", "both bad"),
                    ("skip", "skipped (flagged)"),
                ],
                max_length=8,
            ),
        ),
        migrations.AddConstraint(
            model_name="judgment",
            constraint=models.CheckConstraint(
                condition=models.Q(("choice__in", ["a", "b", "tie", "both_bad", "skip"])),
                name="judgment_choice_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="judgment",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("choice", "skip"), _negated=True),
                    models.Q(("flagged", True), models.Q(("flag_reason", ""), _negated=True)),
                    _connector="OR",
                ),
                name="judgment_skip_flagged_with_reason",
            ),
        ),
    ]
