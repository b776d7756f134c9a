"""A ``db_worker`` SIGKILLed in the middle of generating or scoring a run's outputs: what it
stored is whole, and the same task queued again on another worker completes the run's outputs
without regenerating or doubling any (training is covered by tests/trainer/test_tasks_workers.py,
whose worker support this reuses)."""

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from django.db import connection
from django.test import override_settings
from django_tasks_db.models import DBTaskResult

from evalhub import tasks
from evalhub.metrics import METRICS
from evalhub.models import Output
from evalhub.selectors.outputs import evaluation_prompts, run_systems
from evalhub.services.prompts import prompts_create_from_split
from evalhub.services.systems import system_get_or_create
from tests.factories import BaseModelFactory, ExampleFactory, FineTuneRunFactory, OutputFactory
from tests.trainer.worker_support import (
    DATABASE_TASKS,
    REPO,
    SharedDatabase,
    start_worker,
    stop_worker,
    wait_for,
)
from trainer.models import Split

PROMPTS = 24  # three batches of eight per system


def _run(tiny):
    model_dir, adapter_dir = tiny
    run = FineTuneRunFactory(
        base_model=BaseModelFactory(name="tiny-llama", source=str(model_dir)),
        adapter_path=str(adapter_dir),
    )
    for i in range(PROMPTS):
        ExampleFactory(
            dataset=run.dataset,
            split=Split.TEST,
            messages=[
                {"role": "user", "content": f"question number {i}"},
                {"role": "assistant", "content": f"the answer is {i}"},
            ],
        )
    prompts_create_from_split(dataset=run.dataset)
    return run


def _start_slow_worker(shared: SharedDatabase, log: Path, marks: Path, **delays: float):
    env = shared.env() | {"EVALHUB_SLOW_MARKS": str(marks)}
    env |= {f"EVALHUB_SLOW_{name.upper()}_S": str(value) for name, value in delays.items()}
    command = [
        sys.executable, "-m", "tests.hardening.slow_worker", "--queue-name", "gpu",
        "--no-reload", "--no-startup-delay", "--interval", "0.1", "--worker-id", "doomed",
    ]  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def _count(shared: SharedDatabase, sql: str) -> int:
    """A count as the workers see it now."""
    if shared.vendor == "sqlite":
        with closing(sqlite3.connect(shared.file, timeout=30)) as db:
            return db.execute(sql).fetchone()[0]
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def _resume(shared: SharedDatabase, log: Path, task, run, **kwargs) -> DBTaskResult:
    """Queue the task again and let a fresh worker take it and exit when the queue is empty."""
    with override_settings(TASKS=DATABASE_TASKS):
        queued = task.enqueue(run_id=run.pk, **kwargs)
    shared.push()
    survivor = start_worker(shared, log, worker_id="survivor", batch=True)
    try:
        survivor.wait(timeout=300)
    finally:
        stop_worker(survivor)
    shared.pull()
    result = DBTaskResult.objects.get(pk=queued.id)
    assert result.status == "SUCCESSFUL", log.read_text()[-3000:]
    return result


def _kill(worker: subprocess.Popen) -> None:
    worker.kill()  # SIGKILL: no handler, no cleanup
    worker.wait()


@pytest.mark.django_db(transaction=True)
def test_killed_mid_generation_then_resumed_every_prompt_answered_once(tmp_path, tiny):
    run = _run(tiny)
    with override_settings(TASKS=DATABASE_TASKS):
        tasks.generate.enqueue(run_id=run.pk, max_new_tokens=4)
    shared = SharedDatabase(tmp_path)
    shared.push()
    log = tmp_path / "doomed.log"
    doomed = _start_slow_worker(shared, log, tmp_path, store=1.5)
    try:
        wait_for(
            lambda: _count(shared, "SELECT COUNT(*) FROM evalhub_output") >= 8,
            timeout=300,
            what="a first stored batch",
            logs=[log],
        )
    finally:
        _kill(doomed)
    shared.pull()
    before = {(o.system_id, o.prompt_id): (o.pk, o.text) for o in Output.objects.all()}
    assert 8 <= len(before) < 2 * PROMPTS  # killed half-way
    for output in Output.objects.all():  # whole rows: text, length and timing together
        assert output.token_count is not None and output.latency_ms > 0

    # The same settings as the killed task: other settings would be refused, not mixed in.
    result = _resume(shared, tmp_path / "survivor.log", tasks.generate, run, max_new_tokens=4)

    systems = run_systems(run=run)
    prompts = set(evaluation_prompts(dataset=run.dataset).values_list("pk", flat=True))
    for system in systems.values():
        answered = list(Output.objects.filter(system=system).values_list("prompt_id", flat=True))
        assert sorted(answered) == sorted(prompts)  # complete, and no prompt twice
    after = {(o.system_id, o.prompt_id): (o.pk, o.text) for o in Output.objects.all()}
    assert {key: after[key] for key in before} == before  # kept, not generated again
    generated = sum(r["generated"] for r in result.return_value["generated"])
    assert generated == 2 * PROMPTS - len(before)


@pytest.mark.django_db(transaction=True)
def test_killed_mid_scoring_leaves_no_partial_scores_and_a_rerun_scores_all(tmp_path, tiny):
    run = _run(tiny)
    for kind in ("base", "adapter"):
        system = system_get_or_create(run=run, kind=kind)
        for prompt in evaluation_prompts(dataset=run.dataset):
            OutputFactory(system=system, prompt=prompt, text=f"{kind} says {prompt.pk}")
    total = Output.objects.count()
    with override_settings(TASKS=DATABASE_TASKS):
        tasks.score.enqueue(run_id=run.pk)
    shared = SharedDatabase(tmp_path)
    shared.push()
    log = tmp_path / "doomed.log"
    doomed = _start_slow_worker(shared, log, tmp_path, score=120)
    try:
        wait_for(
            lambda: (tmp_path / "scoring.computed").exists(),
            timeout=300,
            what="scores computed, not yet stored",
            logs=[log],
        )
    finally:
        _kill(doomed)
    shared.pull()
    assert not Output.objects.exclude(metrics={}).exists()  # all or nothing: nothing
    assert not Output.objects.exclude(metrics_encoder="").exists()

    _resume(shared, tmp_path / "survivor.log", tasks.score, run)

    assert Output.objects.count() == total
    for output in Output.objects.all():
        assert set(output.metrics) == set(METRICS), output.metrics
        assert output.metrics_encoder
