"""Real ``manage.py db_worker`` processes on the test database: two workers share one queue
without running a task twice, and a run launched from the web survives its worker being
killed with SIGKILL: the run page marks it interrupted and "Resume" finishes it on another
worker, from the last checkpoint."""

from pathlib import Path

import pytest
from django.db import connection
from django.test import override_settings
from django_tasks_db.models import DBTaskResult

from tests.factories import ManagerFactory
from tests.trainer.run_fixtures import colour_dataset
from tests.trainer.worker_support import (
    DATABASE_TASKS,
    SharedDatabase,
    record,
    start_worker,
    stop_worker,
    wait_for,
)
from trainer.engine.checkpoint import read_checkpoint_info
from trainer.engine.config import TrainConfig
from trainer.models import FineTuneRun, MetricKind, RunStatus
from trainer.services.run_queue import ORPHANED_TASK

TASKS = 24


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from trainer.engine.toy import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama-workers"))


@pytest.mark.django_db(transaction=True)
def test_two_workers_share_one_queue_and_run_each_task_once(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip(
            "what is tested is PostgreSQL's SELECT ... FOR UPDATE SKIP LOCKED, which lets "
            "workers on many machines share one queue; SQLite serves one machine and is "
            "covered by the SIGKILL test. The PostgreSQL leg (make test-postgres) runs this."
        )
    shared = SharedDatabase(tmp_path)
    marks = tmp_path / "marks"
    marks.mkdir()
    with override_settings(TASKS=DATABASE_TASKS):
        for number in range(TASKS):
            record.enqueue(marker=f"task{number}", directory=str(marks))
    logs = [tmp_path / "one.log", tmp_path / "two.log"]
    workers = [
        start_worker(shared, logs[0], worker_id="one"),
        start_worker(shared, logs[1], worker_id="two"),
    ]
    try:
        # Each task waits for the gate, so two running tasks means each worker holds one.
        wait_for(
            lambda: DBTaskResult.objects.filter(status="RUNNING").count() == 2,
            timeout=120,
            what="each worker to claim a task",
            logs=logs,
        )
        (marks / "gate").touch()
        wait_for(
            lambda: DBTaskResult.objects.filter(status="SUCCESSFUL").count() == TASKS,
            timeout=120,
            what="every task to finish",
            logs=logs,
        )
    finally:
        for worker in workers:
            stop_worker(worker)

    results = list(DBTaskResult.objects.all())
    assert len(results) == TASKS
    assert all(len(r.worker_ids) == 1 for r in results), [r.worker_ids for r in results]
    assert {r.worker_ids[0] for r in results} == {"one", "two"}
    runs = sorted(p.name.split(".")[0] for p in marks.iterdir() if p.name != "gate")
    assert runs == sorted(f"task{number}" for number in range(TASKS))


def new_run_form(dataset, model_dir: Path) -> dict:
    # 5 steps an epoch, 24 steps of a tiny model, a checkpoint every 4 and at each epoch end.
    config = TrainConfig(
        rank=4, learning_rate=0.02, batch_size=2, epochs=5, max_steps=24, eval_every=4, patience=0
    )
    data = {**config.as_dict(), "dataset": dataset.name, "base_model": str(model_dir)}
    data["name"] = "killed-mid-run"
    return data


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_worker_is_killed_is_interrupted_then_resumed_from_its_checkpoint(
    client, tmp_path, tiny_model_dir
):
    client.force_login(ManagerFactory())
    shared = SharedDatabase(tmp_path)
    with override_settings(TASKS=DATABASE_TASKS):
        response = client.post("/runs/new/", new_run_form(colour_dataset(), tiny_model_dir))
    run = FineTuneRun.objects.get()
    assert response.status_code == 302 and run.status == RunStatus.QUEUED
    shared.push()

    first_log = tmp_path / "doomed.log"
    doomed = start_worker(shared, first_log, worker_id="doomed")
    try:
        seen = wait_for(
            lambda: (row := shared.run_row(run.pk))["checkpoint_path"] and row["step"] >= 6 and row,
            timeout=300,
            what="a checkpoint, then step 6",
            logs=[first_log],
        )
    finally:
        doomed.kill()  # SIGKILL: no handler runs, nothing is written
        doomed.wait()
    assert seen["status"] == RunStatus.RUNNING
    shared.pull()
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING  # nobody told the database
    checkpoint_step = read_checkpoint_info(Path(run.checkpoint_path))["loop"]["step"]
    assert 0 < checkpoint_step < run.total_steps == 24

    # Loading the run page is where the dead worker is noticed.
    page = client.get(f"/runs/{run.pk}/").content.decode()
    run.refresh_from_db()
    assert run.status == RunStatus.INTERRUPTED and "status-interrupted" in page
    assert f"Resume from step {run.step}" in page
    killed_task = DBTaskResult.objects.get()
    assert killed_task.status == "FAILED" and killed_task.exception_class_path == ORPHANED_TASK

    with override_settings(TASKS=DATABASE_TASKS):
        response = client.post(f"/runs/{run.pk}/resume/")
    resumed = FineTuneRun.objects.get(resumed_from=run)
    assert response["Location"] == f"/runs/{resumed.pk}/"
    assert resumed.status == RunStatus.QUEUED and resumed.step == checkpoint_step
    shared.push()

    second_log = tmp_path / "survivor.log"
    survivor = start_worker(shared, second_log, worker_id="survivor", batch=True)
    try:
        survivor.wait(timeout=300)
    finally:
        stop_worker(survivor)
    shared.pull()
    resumed.refresh_from_db()
    assert resumed.status == RunStatus.SUCCEEDED, second_log.read_text()[-3000:]
    assert resumed.step == resumed.total_steps == 24
    assert resumed.plan["start_step"] == checkpoint_step
    # A restart from step 0 would have tried to store step 1 again (a unique constraint).
    steps = resumed.metrics.filter(kind=MetricKind.TRAIN).values_list("step", flat=True)
    assert list(steps.order_by("step")) == list(range(1, 25))
    task = DBTaskResult.objects.get(args_kwargs__kwargs__run_id=resumed.pk)
    assert task.status == "SUCCESSFUL" and task.worker_ids == ["survivor"]
    assert task.return_value["status"] == RunStatus.SUCCEEDED
