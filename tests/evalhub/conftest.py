import pytest

from tests.evalhub.chat_peers import llama_server


@pytest.fixture(scope="session")
def llama():
    """The packaged SmolLM2 behind llama-cpp-python's OpenAI-compatible server, one per session."""
    with llama_server() as base_url:
        yield base_url
