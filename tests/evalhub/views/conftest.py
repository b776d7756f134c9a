import pytest
from django.test import override_settings


@pytest.fixture
def database_tasks():
    """Queued tasks stay in the database (no worker): a started run is only queued."""
    tasks = {
        "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "gpu"]}
    }
    with override_settings(TASKS=tasks):
        yield


@pytest.fixture
def model_dir(tmp_path) -> str:
    """A directory the base-model check accepts (weights are not loaded: no worker runs)."""
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")
    return str(tmp_path)
