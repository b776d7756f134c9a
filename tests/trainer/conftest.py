"""Fixtures of the training tests: a tiny model on disk, and (``usefixtures("runs_dir")``) runs
and models kept under the test's own temporary folder."""

import pytest

from trainer.engine.toy import build_tiny_model


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def runs_dir(settings, tmp_path):
    settings.EVALHUB_RUNS_DIR = tmp_path / "runs"
    settings.EVALHUB_MODEL_CACHE = tmp_path / "models"
    return settings.EVALHUB_RUNS_DIR
