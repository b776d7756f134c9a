import os

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.factories import ExpertFactory, ManagerFactory
from tests.trainer.tiny_llm import build_lora_adapter, build_tiny_llm
from trainer.engine.environment import prefer_runtime_settings

# As manage.py does for every command: pytest does not start there. On a busy machine spinning
# OpenMP threads make training steps several times slower. The first conftest, so torch is not
# loaded yet (pytest-django's set-up imports no torch).
prefer_runtime_settings()


# What marks a test as one that touches the database (the live-server tests reach it through
# a server they start, so they say so with the ``database`` marker).
DATABASE_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
    "live_server",
}


def pytest_collection_modifyitems(config, items):
    """With EVALHUB_DATABASE_TESTS_ONLY=1 (the PostgreSQL leg of ``make test``), leave out the
    tests that touch no database: they ran on the SQLite leg, and the database cannot change
    what they do. Reported as deselected, never as passed."""
    if os.environ.get("EVALHUB_DATABASE_TESTS_ONLY") != "1":
        return
    kept, dropped = [], []
    for item in items:
        touches = (
            item.get_closest_marker("django_db") is not None
            or item.get_closest_marker("database") is not None
            or DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))
        )
        (kept if touches else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture
def manager(db):
    return ManagerFactory()


@pytest.fixture
def expert(db):
    return ExpertFactory()


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def expert_client(client, expert):
    client.force_login(expert)
    return client


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A tiny random Llama and a LoRA adapter on it, built once per session; tests only read
    them (load, generate), never write into the directories."""
    root = tmp_path_factory.mktemp("tiny-llm")
    model_dir = build_tiny_llm(root / "model")
    return model_dir, build_lora_adapter(model_dir, root / "adapter")


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory):
    """The packaged SmolLM2-135M converted to safetensors once per session (~30 s): the slow
    tests that load the real model share it and only read it."""
    from trainer.engine.model_store import DEFAULT_BASE_MODEL, resolve_model_dir

    return resolve_model_dir(DEFAULT_BASE_MODEL, tmp_path_factory.mktemp("smollm2-cache"))


@pytest.fixture
def migrate_to(transactional_db):
    """Move the test database to the given migrations and get their historical models; the
    latest schema is restored afterwards, whatever the test did."""
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()

    def migrate(targets):
        executor = MigrationExecutor(connection)
        executor.migrate(targets)
        return executor.loader.project_state(targets).apps

    yield migrate
    MigrationExecutor(connection).migrate(latest)
