"""Migrations move what users stored: a run's resolved plan leaves ``hyperparameters`` for a
field of its own, and goes back there when the migration is reversed; task rows that named a
missing exception class name the real one; examples made before their prompt's hash was stored
gain it."""

from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult as Current

from tests.factories import ExampleFactory
from tests.trainer.worker_support import DATABASE_TASKS
from trainer.datasets.normalise import content_hash
from trainer.services.run_queue import RunOrphaned

BEFORE = [("trainer", "0001_initial")]
AFTER = [("trainer", "0002_run_plan_field")]
PLAN = {"total_steps": 24, "start_step": 6, "padding_share": 0.125}


def test_the_plan_moves_out_of_the_hyperparameters_into_its_field_and_back(migrate_to):
    apps = migrate_to(BEFORE)
    BaseModel = apps.get_model("trainer", "BaseModel")
    Dataset = apps.get_model("trainer", "Dataset")
    FineTuneRun = apps.get_model("trainer", "FineTuneRun")
    model = BaseModel.objects.create(name="smollm2-135m", source="smollm2-135m")
    dataset = Dataset.objects.create(name="kitchen", content_hash="h")
    trained = FineTuneRun.objects.create(
        name="trained",
        dataset=dataset,
        base_model=model,
        hyperparameters={"rank": 16, "max_steps": 24, "plan": PLAN},
    )
    queued = FineTuneRun.objects.create(
        name="queued", dataset=dataset, base_model=model, hyperparameters={"rank": 8}
    )

    FineTuneRun = migrate_to(AFTER).get_model("trainer", "FineTuneRun")
    trained = FineTuneRun.objects.get(pk=trained.pk)
    assert trained.plan == PLAN
    assert trained.hyperparameters == {"rank": 16, "max_steps": 24}
    queued = FineTuneRun.objects.get(pk=queued.pk)
    assert (queued.plan, queued.hyperparameters) == ({}, {"rank": 8})

    FineTuneRun = migrate_to(BEFORE).get_model("trainer", "FineTuneRun")
    assert FineTuneRun.objects.get(pk=trained.pk).hyperparameters == {
        "rank": 16,
        "max_steps": 24,
        "plan": PLAN,
    }
    assert FineTuneRun.objects.get(pk=queued.pk).hyperparameters == {"rank": 8}


@override_settings(TASKS=DATABASE_TASKS)
def test_tasks_failed_under_the_old_orphan_path_become_readable(migrate_to):
    apps = migrate_to(
        [
            ("trainer", "0002_run_plan_field"),
            ("django_tasks_database", "0021_conditional_partial_index_ordering"),
        ]
    )
    DBTaskResult = apps.get_model("django_tasks_database", "DBTaskResult")
    row = DBTaskResult.objects.create(
        status="FAILED",
        task_path="trainer.tasks.finetune",
        args_kwargs={"args": [], "kwargs": {"run_id": 1}},
        priority=0,
        queue_name="gpu",
        backend_name="default",
        run_after=timezone.now(),
        finished_at=timezone.now(),
        exception_class_path="trainer.services.runs.RunOrphaned",
        traceback="worker gone",
    )
    migrate_to([("trainer", "0003_orphaned_task_error_path")])
    (error,) = Current.objects.get(pk=row.pk).task_result.errors
    assert error.exception_class is RunOrphaned


def test_the_migrations_record_every_model_change_help_texts_included(db):
    """``makemigrations --check`` exits non-zero when a model differs from its migrations."""
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_examples_made_before_the_stored_hash_gain_the_hash_of_their_prompt(migrate_to):
    question = [{"role": "user", "content": "how long to boil an egg?"}]
    answered = ExampleFactory(messages=[*question, {"role": "assistant", "content": "9 min"}])
    no_user = ExampleFactory(messages=[{"role": "assistant", "content": "an answer alone"}])

    migrate_to([("trainer", "0007_split_ratios_help_text")])
    Example = migrate_to([("trainer", "0008_prompt_hash")]).get_model("trainer", "Example")
    stored = dict(Example.objects.values_list("pk", "prompt_hash"))
    assert stored == {answered.pk: content_hash(question), no_user.pk: ""}
