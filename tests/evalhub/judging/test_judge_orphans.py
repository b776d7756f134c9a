"""A judge run whose worker died (kill -9, a reboot) does not stay "running": the next
``manage.py judge`` or judge task to start marks it interrupted, by the rule training runs
follow; a live one is left alone; the study page shows it, and a new run asks the rest."""

import os
import socket
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django_tasks_db.models import DBTaskResult

from evalhub import tasks
from evalhub.models import JudgeOrder, JudgeRun, JudgeRunStatus, JudgeVerdict
from evalhub.services.judging import ORPHANED, judge_create, judge_runs_mark_orphans
from tests.evalhub.chat_peers import ok, scripted_server
from tests.factories import JudgeVerdictFactory, StudyFactory
from tests.trainer.worker_support import DATABASE_TASKS, dead_pid
from trainer.services.run_queue import ORPHANED_TASK

pytestmark = pytest.mark.django_db
HERE = socket.gethostname()


def running(judge, study, *, worker: str, heartbeat_ago: timedelta = timedelta()) -> JudgeRun:
    now = timezone.now()
    return JudgeRun.objects.create(
        judge=judge,
        study=study,
        status=JudgeRunStatus.RUNNING,
        worker=worker,
        started_at=now - heartbeat_ago,
        heartbeat_at=now - heartbeat_ago,
    )


def test_the_next_judge_command_interrupts_a_dead_run_keeps_a_live_one_and_asks_the_rest(
    study, capsys
):
    with scripted_server(ok("A")) as server:
        judge = judge_create(name="remote", backend="http", model="m", base_url=server.url)
        dead = running(judge, study, worker=f"{HERE}:{dead_pid()}")
        first = study.comparisons.order_by("pk").first()
        JudgeVerdictFactory(judge=judge, comparison=first, order=JudgeOrder.AB)
        JudgeRun.objects.filter(pk=dead.pk).update(verdicts_done=1)
        alive = running(judge, StudyFactory(), worker=f"{HERE}:{os.getpid()}")

        call_command("judge", f"--study={study.pk}", "--judge=remote", verbosity=0)

    dead.refresh_from_db()
    assert dead.status == JudgeRunStatus.INTERRUPTED and dead.finished_at is not None
    assert dead.error == ORPHANED.format(
        worker=dead.worker, heartbeat=dead.heartbeat_at, verdicts=1
    )
    alive.refresh_from_db()
    assert alive.status == JudgeRunStatus.RUNNING
    new = JudgeRun.objects.latest("pk")
    assert (new.status, new.verdicts_done) == (JudgeRunStatus.SUCCEEDED, 3)
    assert new.worker == f"{HERE}:{os.getpid()}" and new.heartbeat_at >= new.started_at
    assert JudgeVerdict.objects.filter(comparison__study=study).count() == 4
    assert "succeeded; 3 verdicts stored" in capsys.readouterr().out


def test_a_run_on_another_host_is_interrupted_only_once_its_heartbeat_is_old(study):
    judge = judge_create(name="remote", backend="http", model="m", base_url="http://x.invalid")
    quiet = running(judge, study, worker="gpu-7:1", heartbeat_ago=timedelta(minutes=16))
    recent = running(judge, study, worker="gpu-7:2", heartbeat_ago=timedelta(minutes=5))

    assert [run.pk for run in judge_runs_mark_orphans()] == [quiet.pk]
    recent.refresh_from_db()
    assert recent.status == JudgeRunStatus.RUNNING


@override_settings(TASKS=DATABASE_TASKS)
def test_a_worker_taking_a_judge_task_interrupts_the_dead_run_and_fails_its_task(
    study, django_capture_on_commit_callbacks
):
    with scripted_server(ok("B")) as server:
        judge = judge_create(name="remote", backend="http", model="m", base_url=server.url)
        dead = running(judge, study, worker=f"{HERE}:{dead_pid()}")
        dead_task = tasks.judge.enqueue(judge_run_id=dead.pk)
        DBTaskResult.objects.filter(pk=dead_task.id).update(status="RUNNING")
        queued = JudgeRun.objects.create(judge=judge, study=study)

        result = tasks.judge.call(judge_run_id=queued.pk)

    dead.refresh_from_db()
    assert dead.status == JudgeRunStatus.INTERRUPTED
    row = DBTaskResult.objects.get(pk=dead_task.id)
    assert (row.status, row.exception_class_path) == ("FAILED", ORPHANED_TASK)
    assert row.traceback == dead.error
    assert result == {"judge_run": queued.pk, "status": "succeeded", "verdicts": 4}


def test_the_study_page_shows_the_interrupted_run_and_says_a_new_run_resumes(manager_client, study):
    judge = judge_create(name="remote", backend="http", model="m", base_url="http://x.invalid")
    dead = running(judge, study, worker=f"{HERE}:{dead_pid()}")
    judge_runs_mark_orphans()
    dead.refresh_from_db()

    page = manager_client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert '<span class="status status-interrupted">interrupted</span>' in page
    assert escape(dead.error) in page
    assert "running the judge again asks only the questions still open" in page


def test_looking_for_orphans_leaves_finished_and_queued_runs_alone(study):
    judge = judge_create(name="remote", backend="http", model="m", base_url="http://x.invalid")
    old = timezone.now() - timedelta(days=1)
    for status in (JudgeRunStatus.QUEUED, JudgeRunStatus.SUCCEEDED, JudgeRunStatus.FAILED):
        JudgeRun.objects.create(judge=judge, study=study, status=status, worker="gpu-7:1")
    JudgeRun.objects.update(heartbeat_at=old, started_at=old)

    assert judge_runs_mark_orphans() == []
    assert not JudgeRun.objects.filter(status=JudgeRunStatus.INTERRUPTED).exists()
