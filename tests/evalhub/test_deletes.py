"""Deleting a dataset, a run or a study: refused with the reason while something depends on
it, all or nothing otherwise."""

import pytest
from django.test import override_settings
from django_tasks_db.models import DBTaskResult

from evalhub.models import Assignment, Comparison, Judgment, Output, Prompt, Study, System
from evalhub.selectors.deletes import (
    RUN_ACTIVE,
    RUN_RESUMES_IT,
    RUN_TASK_PENDING,
    RUN_TRAINED_ON_IT,
    STUDY_HAS_JUDGMENTS,
    STUDY_USES_IT,
    run_delete_plan,
)
from evalhub.selectors.rating import rater_next_assignment
from evalhub.services.deletes import DeleteRefused, dataset_delete, run_delete, study_delete
from evalhub.services.judgments import judgment_submit
from evalhub.services.studies import study_create
from evalhub.tasks import evaluate
from tests.evalhub.rating_fixtures import open_study, run_with_outputs
from tests.factories import (
    DatasetFactory,
    ExampleFactory,
    FineTuneRunFactory,
    OutputFactory,
    PromptFactory,
)
from trainer.models import Dataset, FineTuneRun, RunMetric, RunStatus
from trainer.services.run_training import run_output_dir
from trainer.tasks import finetune

pytestmark = pytest.mark.django_db
DATABASE_TASKS = {
    "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "gpu"]}
}


def _judge(study, rater, count: int) -> None:
    for _ in range(count):
        assignment = rater_next_assignment(study=study, rater=rater)
        judgment_submit(assignment=assignment, rater=rater, choice="a")


def _rows() -> dict[str, int]:
    models = (Study, Comparison, Assignment, Judgment, Output, Prompt, System, FineTuneRun, Dataset)
    return {m.__name__: m.objects.count() for m in models}


def _finished(run: FineTuneRun) -> FineTuneRun:
    run.status = RunStatus.SUCCEEDED
    run.save(update_fields=["status"])
    return run


def test_a_study_with_judgments_is_refused_with_its_count_and_kept_whole():
    study, (rater, _), _ = open_study(prompts=3)
    _judge(study, rater, 2)
    before = _rows()
    with pytest.raises(DeleteRefused) as refused:
        study_delete(study=study)
    assert refused.value.reasons == [
        STUDY_HAS_JUDGMENTS.format(name="Support answers", count=2, s="s")
    ]
    assert _rows() == before


def test_a_study_without_judgments_goes_with_its_comparisons_and_assignments_only():
    study, _, outputs = open_study(prompts=3)
    before = _rows()
    study_delete(study=study)
    after = _rows()
    assert (after["Study"], after["Comparison"], after["Assignment"]) == (0, 0, 0)
    assert after["Output"] == before["Output"] and after["System"] == before["System"]
    assert FineTuneRun.objects.filter(pk=outputs.run.pk).exists()


def test_a_run_whose_outputs_have_judgments_names_the_study_and_keeps_everything():
    study, (rater, _), outputs = open_study(prompts=2)
    _judge(study, rater, 1)
    before = _rows()
    with pytest.raises(DeleteRefused) as refused:
        run_delete(run=_finished(outputs.run))
    assert refused.value.reasons == [
        STUDY_HAS_JUDGMENTS.format(name="Support answers", count=1, s="")
    ]
    assert _rows() == before


def test_a_run_compared_by_a_study_without_judgments_asks_to_delete_that_study_first():
    outputs = run_with_outputs(prompts=2)
    study_create(name="Not started", systems=outputs.systems)
    with pytest.raises(DeleteRefused) as refused:
        run_delete(run=_finished(outputs.run))
    assert refused.value.reasons == [STUDY_USES_IT.format(name="Not started")]


@pytest.mark.parametrize("status", [RunStatus.QUEUED, RunStatus.RUNNING])
def test_a_queued_or_running_run_must_be_cancelled_first(status):
    run = FineTuneRunFactory(status=status)
    with pytest.raises(DeleteRefused) as refused:
        run_delete(run=run)
    assert refused.value.reasons == [RUN_ACTIVE.format(status=status)]
    assert FineTuneRun.objects.filter(pk=run.pk).exists()


def test_a_run_resumed_by_a_queued_run_keeps_its_checkpoint():
    run = FineTuneRunFactory(status=RunStatus.CANCELLED)
    FineTuneRunFactory(name="go-on", status=RunStatus.QUEUED, resumed_from=run)
    with pytest.raises(DeleteRefused) as refused:
        run_delete(run=run)
    assert refused.value.reasons == [RUN_RESUMES_IT.format(name="go-on", status="queued")]


def test_a_finished_run_goes_with_its_curve_systems_outputs_and_folder(
    django_capture_on_commit_callbacks,
):
    outputs = run_with_outputs(prompts=3)
    run = _finished(outputs.run)
    RunMetric.objects.create(run=run, kind="train", step=1, loss=1.0)
    folder = run_output_dir(run)
    (folder / "adapter").mkdir(parents=True)
    (folder / "adapter" / "adapter_model.safetensors").write_bytes(b"weights")
    plan = run_delete_plan(run=run)
    assert plan.folder == folder
    assert dict(plan.removes) == {
        "loss-curve points": 1,
        "systems (its base and adapter)": 2,
        "outputs of those systems": 6,
    }
    with django_capture_on_commit_callbacks(execute=True):
        run_delete(run=run)
    assert not FineTuneRun.objects.filter(pk=run.pk).exists()
    assert not RunMetric.objects.exists() and not System.objects.exists()
    assert not Output.objects.exists()
    assert Prompt.objects.count() == 3  # the prompts are the dataset's, not the run's
    assert not folder.exists()


def test_a_run_kept_after_a_refusal_keeps_its_folder(django_capture_on_commit_callbacks):
    run = FineTuneRunFactory(status=RunStatus.RUNNING)
    folder = run_output_dir(run)
    folder.mkdir(parents=True)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(DeleteRefused):
        run_delete(run=run)
    assert folder.exists()


def _task(task, run: FineTuneRun, status: str) -> None:
    with override_settings(TASKS=DATABASE_TASKS):
        queued = task.enqueue(run_id=run.pk)
    DBTaskResult.objects.filter(pk=queued.id).update(status=status)


def test_a_run_with_an_evaluation_under_way_waits_for_it_but_not_for_a_stale_training_task():
    run = FineTuneRunFactory(status=RunStatus.CANCELLED)  # cancelled while queued
    _task(finetune, run, "READY")
    _task(evaluate, run, "RUNNING")
    with pytest.raises(DeleteRefused) as refused:
        run_delete(run=run)
    assert refused.value.reasons == [RUN_TASK_PENDING.format(task="evaluate", state="running")]
    DBTaskResult.objects.filter(task_path=evaluate.module_path).update(status="SUCCESSFUL")
    run_delete(run=run)
    assert not FineTuneRun.objects.filter(pk=run.pk).exists()


def test_a_dataset_a_run_was_trained_on_names_the_run():
    run = FineTuneRunFactory(name="trained-here", status=RunStatus.SUCCEEDED)
    with pytest.raises(DeleteRefused) as refused:
        dataset_delete(dataset=run.dataset)
    assert refused.value.reasons == [RUN_TRAINED_ON_IT.format(name="trained-here")]


def test_a_dataset_whose_prompts_a_study_judged_names_the_study_and_keeps_everything():
    study, (rater, _), outputs = open_study(prompts=2)
    _judge(study, rater, 2)
    dataset = outputs.run.dataset
    before = _rows()
    with pytest.raises(DeleteRefused) as refused:
        dataset_delete(dataset=dataset)
    assert refused.value.reasons == [
        RUN_TRAINED_ON_IT.format(name="zebra-run"),
        STUDY_HAS_JUDGMENTS.format(name="Support answers", count=2, s="s"),
    ]
    assert _rows() == before


def test_a_dataset_nothing_depends_on_goes_with_its_examples_prompts_and_outputs():
    dataset = DatasetFactory()
    example = ExampleFactory(dataset=dataset)
    prompt = PromptFactory(dataset=dataset, example=example)
    imported = OutputFactory(prompt=prompt).system
    other = OutputFactory()  # another dataset's prompt and output stay
    dataset_delete(dataset=dataset)
    assert not Dataset.objects.filter(pk=dataset.pk).exists()
    assert list(Prompt.objects.all()) == [other.prompt]
    assert list(Output.objects.all()) == [other]
    assert System.objects.filter(pk=imported.pk).exists()


def test_a_failure_halfway_through_a_run_delete_leaves_everything(monkeypatch):
    run = _finished(run_with_outputs(prompts=2).run)
    before = _rows()

    def fail(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(FineTuneRun, "delete", fail)  # after its systems and outputs went
    with pytest.raises(RuntimeError):
        run_delete(run=run)
    assert _rows() == before
