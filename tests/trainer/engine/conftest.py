import pytest

from trainer.engine.environment import prefer_runtime_settings
from trainer.engine.toy import build_tiny_model, build_tokenizer

# As `manage.py finetune` does: on a busy machine spinning OpenMP threads make steps several
# times slower. Acts only if nothing imported torch before this file was collected.
prefer_runtime_settings()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tokenizer():
    return build_tokenizer()
