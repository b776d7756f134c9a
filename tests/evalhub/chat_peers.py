"""Real peers for the chat-completions client (the judge's and served generation's), on this
machine: llama-cpp-python's OpenAI-compatible server serving the packaged SmolLM2 GGUF, and a
small scripted HTTP server for the answers a real endpoint gives only when it misbehaves (429,
5xx, malformed bodies, slowness)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO

import httpx
import pytest

LLAMA_KEY = "judge-test-key"
# The name the server lists the packaged model under (``GET /v1/models``), as vLLM lists its
# --served-model-name.
LLAMA_MODEL = "smollm2"
NO_SERVER = (
    "llama-cpp-python's server is not installed: `make test` installs the judge extra "
    "(CMAKE_ARGS=-DGGML_NATIVE=OFF pip install -e '.[judge]')"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def completion(text: str, prompt_tokens: int = 10, completion_tokens: int = 1) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
    }


@dataclass
class Scripted:
    """Answers each request (POST or GET) with the next (status, body, headers, delay) of
    ``script``; once the script is used up, with its last entry. Keeps the requests, and the most
    it was answering at once."""

    script: list[tuple[int, str, dict, float]]
    requests: list[dict] = field(default_factory=list)
    url: str = ""
    busy: int = 0
    most_busy: int = 0

    def answer(self, text: str) -> None:
        """From now on, answer every request with ``text``."""
        self.script[:] = [(200, json.dumps(completion(text)), {}, 0.0)]


def ok(text: str) -> tuple[int, str, dict, float]:
    return (200, json.dumps(completion(text)), {}, 0.0)


def listing(*names: str) -> tuple[int, str, dict, float]:
    """A ``GET /models`` answer listing ``names``."""
    data = [{"id": name, "object": "model", "owned_by": "test"} for name in names]
    return (200, json.dumps({"object": "list", "data": data}), {}, 0.0)


@contextmanager
def scripted_server(*script: tuple[int, str, dict, float]) -> Iterator[Scripted]:
    state = Scripted(list(script))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.do_POST()

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            with lock:
                request = {"method": self.command, "path": self.path, "body": body}
                state.requests.append({**request, **dict(self.headers)})
                status, text, headers, delay = (
                    state.script.pop(0) if len(state.script) > 1 else state.script[0]
                )
                state.busy += 1
                state.most_busy = max(state.most_busy, state.busy)
            time.sleep(delay)
            with lock:
                state.busy -= 1
            payload = text.encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client gave up
                self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def llama_server() -> Iterator[str]:
    """Start llama-cpp-python's server on the packaged GGUF (key ``LLAMA_KEY``, listed as
    ``LLAMA_MODEL``), wait until it answers, yield its base URL, stop it."""
    from trainer.engine.model_store import packaged_gguf

    try:
        import llama_cpp.server  # noqa: F401
    except ImportError:
        if os.environ.get("EVALHUB_REQUIRE_JUDGE_SERVER") == "1":
            pytest.fail(f"{NO_SERVER} (EVALHUB_REQUIRE_JUDGE_SERVER=1)")
        pytest.skip(NO_SERVER)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(packaged_gguf("smollm2-135m")),
        "--model_alias",
        LLAMA_MODEL,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--api_key",
        LLAMA_KEY,
        "--n_ctx",
        "2048",
        "--n_threads",
        "2",
        "--verbose",
        "False",
    ]
    base_url = f"http://127.0.0.1:{port}/v1"
    # llama.cpp logs a lot: a pipe that nobody reads would fill and stall it.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_up(process, base_url, log)
            yield base_url
        finally:
            _stop(process)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_until_up(
    process: subprocess.Popen, base_url: str, log: IO[bytes], timeout_s: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout_s
    headers = {"Authorization": f"Bearer {LLAMA_KEY}"}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            error = log.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"llama_cpp.server exited with {process.returncode}: {error}")
        try:
            if httpx.get(f"{base_url}/models", headers=headers, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"llama_cpp.server did not answer at {base_url} within {timeout_s} s")
