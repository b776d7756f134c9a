import pytest

from trainer.engine.toy import build_tiny_model


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(autouse=True)
def runs_dir(settings, tmp_path):
    settings.EVALHUB_RUNS_DIR = tmp_path / "runs"
    settings.EVALHUB_MODEL_CACHE = tmp_path / "models"
    return settings.EVALHUB_RUNS_DIR
