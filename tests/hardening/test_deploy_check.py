"""`manage.py check --deploy` under the production settings the README documents: DEBUG off,
a real SECRET_KEY, ALLOWED_HOSTS set, everything else at its default. Run in a subprocess so
the settings module is read from that environment, as a production server would read it."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

# the settings differ with DATABASE_URL: it runs on the PostgreSQL leg too
pytestmark = pytest.mark.database

ROOT = Path(__file__).resolve().parents[2]


def _check_deploy(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"}
    }
    environment |= {"EVALHUB_DATA_DIR": str(tmp_path), **env}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    result = _check_deploy(
        tmp_path,
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="evalhub.example.org",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNINGS" not in result.stderr
    assert not (tmp_path / "secret_key").exists()  # the key came from the environment


def test_check_deploy_flags_a_weak_key_so_the_check_above_means_something(tmp_path):
    result = _check_deploy(
        tmp_path, DEBUG="0", SECRET_KEY="changeme", ALLOWED_HOSTS="evalhub.example.org"
    )
    assert result.returncode != 0
    assert "security.W009" in result.stderr


@pytest.mark.parametrize(
    ("missing", "message"),
    [("SECRET_KEY", "SECRET_KEY must be set"), ("ALLOWED_HOSTS", "security.W020")],
)
def test_production_without_a_key_or_hosts_fails_the_check(tmp_path, missing, message):
    env = {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "h.example"}
    del env[missing]
    result = _check_deploy(tmp_path, **env)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
