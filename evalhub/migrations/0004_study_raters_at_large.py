from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("evalhub", "0003_study_sequential_settings"),
    ]

    operations = [
        migrations.AddField(
            model_name="study",
            name="raters_at_large",
            field=models.BooleanField(
                default=False,
                help_text="Verdict about raters at large (widened for the panel's lean), not "
                "only about the study's own raters",
            ),
        ),
    ]
