import pytest

from trainer.engine.toy import build_tiny_model, build_tokenizer


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tokenizer():
    return build_tokenizer()
