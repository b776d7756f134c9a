import subprocess
import sys


def run_settings(env: dict) -> subprocess.CompletedProcess:
    code = "import evalhub.settings as s; print(s.DATABASES['default']['ENGINE'])"
    return subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
    )


def test_secret_key_is_required_when_debug_is_off(tmp_path):
    result = run_settings({"DEBUG": "0", "EVALHUB_DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_local_secret_key_is_generated_once_into_the_data_dir(tmp_path):
    assert run_settings({"EVALHUB_DATA_DIR": str(tmp_path)}).returncode == 0
    first = (tmp_path / "secret_key").read_text()
    assert run_settings({"EVALHUB_DATA_DIR": str(tmp_path)}).returncode == 0
    assert (tmp_path / "secret_key").read_text() == first and len(first) > 40


def test_database_url_selects_postgresql(tmp_path):
    result = run_settings(
        {"EVALHUB_DATA_DIR": str(tmp_path), "DATABASE_URL": "postgres://u@localhost/db"}
    )
    assert result.stdout.strip() == "django.db.backends.postgresql"


def test_default_database_is_sqlite_in_wal_mode(tmp_path):
    code = (
        "import os, django; os.environ['DJANGO_SETTINGS_MODULE']='evalhub.settings';"
        "django.setup();"
        "from django.db import connection; c = connection.cursor();"
        "c.execute('PRAGMA journal_mode'); print(c.fetchone()[0])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": "/usr/bin:/bin", "EVALHUB_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "wal"
    assert (tmp_path / "evalhub.sqlite3").exists()
