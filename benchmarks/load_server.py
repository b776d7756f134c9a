"""The server side of the rating load benchmark and of the live-server fault tests: a database
of its own (PostgreSQL ``evalhub_load`` on 127.0.0.1:5432, or a SQLite file in a temporary
folder), one open study with enough work for the run, a session per rater, gunicorn serving the
production settings (benchmarks/load_settings.py: DEBUG off, the per-rater submit limit lifted),
and a check of what the database holds afterwards.

The Django steps run in child processes (``python benchmarks/load_server.py --internal STEP``)
with the server's environment, so that the caller, a benchmark or a test already configured for
another database, never mixes the two.
"""

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
HOST = "127.0.0.1"


@dataclass
class LoadConfig:
    db: str  # "postgres" or "sqlite"
    raters: int
    judgments: int
    workers: int = 3
    threads: int = 4
    overlap: int = 2
    time_limit_s: float = 900.0
    think_s: float = 0.0  # mean pause between a rater's submits; 0 is a closed loop
    database_name: str = "evalhub_load"
    seed: int = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _server_env(config: LoadConfig, data_dir: Path) -> dict[str, str]:
    if config.db == "postgres":
        database_url = f"postgres://postgres@127.0.0.1:5432/{config.database_name}"
    else:
        database_url = f"sqlite:///{data_dir / 'load.sqlite3'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    return env | {
        "DJANGO_SETTINGS_MODULE": "benchmarks.load_settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        "EVALHUB_DATA_DIR": str(data_dir),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": HOST,
        # Plain HTTP on loopback: no TLS redirect, cookies without the Secure flag.
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
        "CONN_MAX_AGE": "60",
    }


def _create_database(config: LoadConfig) -> None:
    if config.db != "postgres":
        return
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{config.database_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{config.database_name}"')


def _drop_database(config: LoadConfig) -> None:
    if config.db != "postgres":
        return
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{config.database_name}" WITH (FORCE)')


def _internal(step: str, env: dict[str, str], payload: dict) -> dict:
    """Run a Django step in a child process with the server's environment."""
    done = subprocess.run(
        [sys.executable, __file__, "--internal", step],
        input=json.dumps(payload),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"{step} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _setup_data(payload: dict) -> dict:
    """Migrate, then one study with enough assignments for the target, and a session per rater
    (made directly, as force_login does: logging 50 raters in through PBKDF2 would be the
    benchmark's slowest part and is not what is measured)."""
    import django

    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from evalhub.models import Output, Prompt, StudyStatus, System, SystemKind
    from evalhub.roles import expert_group
    from evalhub.services.studies import study_create, study_set_status
    from trainer.models import Dataset

    call_command("migrate", verbosity=0)
    raters = payload["raters"]
    overlap = min(payload["overlap"], raters)  # one rater: each comparison once
    # 10 % more assignments than the target, so that the target is reached before raters run out.
    prompts_needed = -(-int(payload["judgments"] * 1.1) // overlap)
    dataset = Dataset.objects.create(name="load", format="messages", content_hash="0" * 64)
    prompts = Prompt.objects.bulk_create(
        Prompt(
            dataset=dataset,
            messages=[{"role": "user", "content": f"How do I convert {n} cups to millilitres?"}],
            reference=f"{n} cups is {n * 240} ml.",
        )
        for n in range(prompts_needed)
    )
    systems = [System.objects.create(name=f"load-{s}", kind=SystemKind.IMPORTED) for s in "ab"]
    answer = "Multiply the cups by 240: that gives millilitres. " * 6  # ~300 characters
    Output.objects.bulk_create(
        Output(system=system, prompt=prompt, text=f"{answer}({system.name[-1]}{prompt.pk})")
        for prompt in prompts
        for system in systems
    )
    group = expert_group()
    users = []
    for n in range(raters):
        user = User.objects.create_user(f"rater{n:03d}")
        user.groups.add(group)
        users.append(user)
    study = study_create(
        name="Load study", systems=systems, raters=users, overlap=overlap, seed=payload["seed"]
    )
    study_set_status(study=study, status=StudyStatus.OPEN)
    sessions = []
    for user in users:
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        sessions.append(session.session_key)
    return {"study": study.pk, "sessions": sessions, "assignments": len(prompts) * overlap}


def _verify(payload: dict) -> dict:
    """Compare the acknowledged tokens with what the database holds."""
    import django

    django.setup()
    from django.db.models import Count, Sum

    from evalhub.models import Assignment, Judgment

    judged = Judgment.objects.filter(assignment__comparison__study_id=payload["study"])
    stored = set(judged.values_list("assignment__token", flat=True))
    acknowledged = set(payload["acknowledged"])
    per_assignment = (
        Assignment.objects.filter(comparison__study_id=payload["study"])
        .annotate(n=Count("judgment"))
        .filter(n__gt=1)
        .count()
    )
    found = {
        "judgments_stored": judged.count(),
        "acknowledged": len(acknowledged),
        "acknowledged_twice": len(payload["acknowledged"]) - len(acknowledged),
        "lost": len(acknowledged - stored),
        "stored_not_acknowledged": len(stored - acknowledged),
        "assignments_with_more_than_one": per_assignment,
        "revisions": judged.aggregate(r=Sum("revisions"))["r"] or 0,
    }
    from django.db import connection

    if connection.vendor == "sqlite":  # after a crash: is the file itself sound?
        with connection.cursor() as cursor:
            found["integrity"] = cursor.execute("PRAGMA integrity_check").fetchone()[0]
    if payload.get("rows"):
        fields = ("assignment__token", "choice", "comment", "time_on_task_ms")
        found["rows"] = {t: [c, m, ms] for t, c, m, ms in judged.values_list(*fields)}
    return found


def database_version(env: dict[str, str]) -> str:
    code = (
        "import django; django.setup(); from django.db import connection; "
        "c = connection.cursor(); "
        "print(connection.vendor, connection.Database.sqlite_version "
        "if connection.vendor == 'sqlite' else c.connection.info.server_version)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() or done.stderr.strip()[-200:]


def start_server(config: LoadConfig, env: dict[str, str], port: int) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "evalhub.wsgi:application",
        f"--bind={HOST}:{port}",
        f"--workers={config.workers}",
        f"--threads={config.threads}",
        "--worker-class=gthread" if config.threads > 1 else "--worker-class=sync",
        "--backlog=2048",
        "--timeout=60",
        # Longer than a rater's pause: with gunicorn's 2 s default the server closes an idle
        # connection just as the client reuses it, and that submit fails on the wire.
        "--keep-alive=75",
        "--graceful-timeout=5",
        f"--chdir={ROOT}",
    ]
    # Its own process group, so that a crash can be simulated by killing master and workers.
    server = subprocess.Popen(
        command,
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    wait_until_up(port, server)
    return server


def wait_until_up(port: int, server: subprocess.Popen, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited: {server.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://{HOST}:{port}/accounts/login/", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not answer in time")


def kill_server(server: subprocess.Popen) -> None:
    """SIGKILL to the master and every worker at once: a crash, not a shutdown."""
    os.killpg(server.pid, signal.SIGKILL)
    server.wait()


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@contextlib.contextmanager
def prepared(config: LoadConfig) -> Iterator[tuple[dict[str, str], dict]]:
    """A fresh database holding one open study for ``config``: yields the server environment
    and the setup (study id, one session key per rater); drops everything afterwards."""
    data_dir = Path(tempfile.mkdtemp(prefix="evalhub-load-"))
    env = _server_env(config, data_dir)
    try:
        _create_database(config)
        yield env, _internal("setup", env, asdict(config))
    finally:
        _drop_database(config)
        shutil.rmtree(data_dir, ignore_errors=True)


def verify(env: dict[str, str], study: int, acknowledged: list[str], rows: bool = False) -> dict:
    """What the database holds against what the server acknowledged (see ``_verify``)."""
    payload = {"study": study, "acknowledged": acknowledged, "rows": rows}
    return _internal("verify", env, payload)


def main() -> None:
    parser = argparse.ArgumentParser(description="internal steps of the load benchmark")
    parser.add_argument("--internal", choices=["setup", "verify"], required=True)
    args = parser.parse_args()
    payload = json.loads(sys.stdin.read())
    step = _setup_data if args.internal == "setup" else _verify
    print(json.dumps(step(payload)))


if __name__ == "__main__":
    main()
