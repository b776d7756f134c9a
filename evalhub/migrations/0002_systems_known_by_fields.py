"""Systems are known by their fields: one base and one adapter system per run, gold answers
under kinds of their own instead of the reserved names "gold:better" and "gold:worse".

Existing rows are moved, never deleted. A run with two systems of one kind (possible before
the constraint) keeps as its base or adapter the one generation used, named ``base:…:run-N`` or
``adapter:run-N`` (else the oldest); the others become imported systems of that run, with their
outputs and comparisons untouched.
"""

from django.db import migrations, models
from django.db.models import Count, Q

GOLD_NAMES = {"gold:better": "gold_better", "gold:worse": "gold_worse"}
RUN_KINDS = ("base", "adapter")
KINDS = ("base", "adapter", "reference", "imported", "gold_better", "gold_worse")


def generated_name(system) -> bool:
    if system.kind == "adapter":
        return system.name == f"adapter:run-{system.run_id}"
    return system.name.startswith("base:") and system.name.endswith(f":run-{system.run_id}")


def forward(apps, schema_editor):
    System = apps.get_model("evalhub", "System")
    for name, kind in GOLD_NAMES.items():
        System.objects.filter(name=name, kind="reference").update(kind=kind)
    doubled = (
        System.objects.filter(kind__in=RUN_KINDS, run__isnull=False)
        .values("run", "kind")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    for group in doubled:
        systems = sorted(
            System.objects.filter(run=group["run"], kind=group["kind"]),
            key=lambda s: (not generated_name(s), s.pk),
        )
        for extra in systems[1:]:
            extra.description = (
                f"{extra.description} (was a second {extra.kind} system of run {extra.run_id})"
            ).strip()
            extra.kind = "imported"
            extra.save(update_fields=["kind", "description"])


def backward(apps, schema_editor):
    System = apps.get_model("evalhub", "System")
    System.objects.filter(kind__in=GOLD_NAMES.values()).update(kind="reference")


class Migration(migrations.Migration):
    dependencies = [
        ("evalhub", "0001_initial"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="system", name="system_kind_valid"),
        migrations.AlterField(
            model_name="system",
            name="kind",
            field=models.CharField(
                choices=[
                    ("base", "base model"),
                    ("adapter", "adapter of a run"),
                    ("reference", "reference answers"),
                    ("imported", "imported outputs"),
                    ("gold_better", "known better gold answers"),
                    ("gold_worse", "known worse gold answers"),
                ],
                max_length=16,
            ),
        ),
        migrations.RunPython(forward, backward),
        migrations.AddConstraint(
            model_name="system",
            constraint=models.CheckConstraint(
                condition=Q(kind__in=KINDS), name="system_kind_valid"
            ),
        ),
        migrations.AddConstraint(
            model_name="system",
            constraint=models.UniqueConstraint(
                condition=Q(kind__in=RUN_KINDS),
                fields=("run", "kind"),
                name="system_one_base_and_adapter_per_run",
            ),
        ),
        migrations.AddConstraint(
            model_name="system",
            constraint=models.UniqueConstraint(
                condition=Q(kind__in=("gold_better", "gold_worse")),
                fields=("kind",),
                name="system_one_per_gold_kind",
            ),
        ),
    ]
