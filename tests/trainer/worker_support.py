"""Real worker processes for tests: a database they can share with the test, starting and
stopping ``manage.py db_worker``, and a small task that records each time it runs."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django_tasks import task

REPO = Path(settings.BASE_DIR)
DATABASE_TASKS = {
    "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "gpu"]}
}


class SharedDatabase:
    """The test database, opened by worker processes too.

    PostgreSQL: the test database itself. SQLite: pytest-django's test database lives in this
    process's memory, so it is copied to a file for the workers (``push``) and copied back
    afterwards (``pull``) with SQLite's backup API; ``run_row`` reads the file while they run.
    """

    def __init__(self, directory: Path) -> None:
        self.vendor = connection.vendor
        self.file = directory / "shared.sqlite3"

    def url(self) -> str:
        if self.vendor == "sqlite":
            return f"sqlite:///{self.file}"
        s = connection.settings_dict
        password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
        return f"postgres://{s['USER']}{password}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "evalhub.settings",
            "DATABASE_URL": self.url(),
            "EVALHUB_DATA_DIR": str(settings.DATA_DIR),
            "PYTHONUNBUFFERED": "1",
        }

    def push(self) -> None:
        if self.vendor == "sqlite":
            connection.ensure_connection()
            # A fresh file: a write-ahead log left by a killed worker must not outlive it.
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.file}{suffix}").unlink(missing_ok=True)
            with closing(sqlite3.connect(self.file)) as target:
                connection.connection.backup(target)

    def pull(self) -> None:
        if self.vendor == "sqlite":
            connection.ensure_connection()
            with closing(sqlite3.connect(self.file)) as source:
                source.backup(connection.connection)

    def run_row(self, run_id: int) -> dict[str, Any]:
        """status, step and checkpoint_path of a run, as the workers see it now."""
        query = "SELECT status, step, checkpoint_path FROM trainer_finetunerun WHERE id = %s"
        if self.vendor == "sqlite":
            with closing(sqlite3.connect(self.file, timeout=30)) as db:
                row = db.execute(query.replace("%s", "?"), (run_id,)).fetchone()
        else:
            with connection.cursor() as cursor:
                cursor.execute(query, [run_id])
                row = cursor.fetchone()
        return dict(zip(("status", "step", "checkpoint_path"), row, strict=True))


def start_worker(
    shared: SharedDatabase, log: Path, *, worker_id: str, queues: str = "gpu", batch: bool = False
) -> subprocess.Popen:
    command = [
        sys.executable, "manage.py", "db_worker", "--queue-name", queues, "--no-reload",
        "--no-startup-delay", "--interval", "0.1", "--worker-id", worker_id,
    ]  # fmt: skip
    if batch:
        command.append("--batch")
    with log.open("ab") as out:
        return subprocess.Popen(
            command, cwd=REPO, env=shared.env(), stdout=out, stderr=subprocess.STDOUT
        )


def wait_for(condition: Callable[[], Any], *, timeout: float, what: str, logs: list[Path]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    tails = "\n".join(f"--- {log}:\n{log.read_text()[-3000:]}" for log in logs if log.exists())
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{tails}")


def stop_worker(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@task(queue_name="gpu")
def record(*, marker: str, directory: str, hold: float = 0.05) -> str:
    """Leave one file per execution (marker, process, a fresh id), once ``gate`` exists."""
    folder = Path(directory)
    deadline = time.monotonic() + 120
    while not (folder / "gate").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    (folder / f"{marker}.{os.getpid()}.{uuid.uuid4().hex}").touch()
    time.sleep(hold)
    return marker


def dead_pid() -> int:
    """The id of a process that has exited and been reaped."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid
