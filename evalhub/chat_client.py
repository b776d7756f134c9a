"""An OpenAI-compatible chat-completions endpoint (vLLM, TGI, llama.cpp's server, a hosted API),
through httpx: the one client that the model judge and served generation share.

One call asks one question. Connection failures, timeouts, 429 and 5xx answers are retried with
exponential backoff (a 429's Retry-After is honoured, up to a cap); 400, 401, 403 and 404 are
not: asking again gets the same answer. An error that no call to this endpoint can escape (a
refused key, an unknown path or model, a server that stays unreachable) is ``fatal``, so that the
caller stops the run instead of collecting the same error for every call. ``in_flight`` keeps a
few calls going at once from a thread pool (never in the web process); ``chats_in_flight`` asks
many chats that way, each failed call's ``CallError`` taking the place of its reply.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

UNREACHABLE = "the endpoint {url} cannot be reached after {tries} tries: {error}"
TIMED_OUT = "the endpoint {url} did not answer within {timeout} s, {tries} tries"
UNAUTHORIZED = (
    "the endpoint {url} refused the key (HTTP {status}): set the environment variable "
    "that the judge's api_key_env or generate's --api-key-env names to a valid key"
)
NOT_FOUND = "the endpoint {url} answered 404: check the base URL (…/v1) and the model name"
RATE_LIMITED = "the endpoint {url} is still rate limiting (HTTP 429) after {tries} tries"
SERVER_ERROR = "the endpoint {url} failed with HTTP {status} after {tries} tries: {body}"
REFUSED = "the endpoint {url} refused the request with HTTP {status}: {body}"
MALFORMED = "the endpoint {url} sent a reply that is not a chat completion: {problem}"
MALFORMED_MODELS = "the endpoint {url} sent a reply that is not a list of models: {problem}"

T = TypeVar("T")
R = TypeVar("R")
_DONE: Any = object()

# The longest wait a server's Retry-After may impose between two tries.
MAX_RETRY_AFTER_S = 30.0


class CallError(Exception):
    """A call that produced no usable reply. ``fatal``: every other call would fail the same way."""

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


@dataclass(frozen=True)
class Endpoint:
    base_url: str  # up to and including /v1
    model: str
    api_key: str = ""
    timeout_s: float = 60.0
    max_retries: int = 3
    backoff_s: float = 0.5  # the first wait; doubled after each failed try

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    @property
    def public_url(self) -> str:
        """The base URL as it may be shown and stored: without a user and password."""
        return str(httpx.URL(self.base_url).copy_with(username=None, password=None))


@dataclass(frozen=True)
class Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int


class _Retry(Exception):
    def __init__(self, message: str, wait_s: float = 0.0, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.wait_s = wait_s
        self.fatal = fatal


def chat(
    client: httpx.Client,
    endpoint: Endpoint,
    messages: list[dict[str, str]],
    *,
    max_tokens: int,
    temperature: float,
    top_p: float | None = None,
    seed: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Reply:
    """The endpoint's reply to ``messages``, retried as the module docstring says. ``top_p`` and
    ``seed`` are sent only when given."""
    body = {
        "model": endpoint.model,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": temperature,
    }
    body.update({k: v for k, v in {"top_p": top_p, "seed": seed}.items() if v is not None})
    url = endpoint.url

    def send() -> httpx.Response:
        return client.post(url, json=body, headers=endpoint.headers(), timeout=endpoint.timeout_s)

    response, latency_ms = _retried(send, endpoint, url, sleep)
    return _reply(response, endpoint, latency_ms)


def served_models(
    client: httpx.Client, endpoint: Endpoint, *, sleep: Callable[[float], None] = time.sleep
) -> list[dict[str, Any]]:
    """The models the endpoint lists (``GET …/models``): one dict per model, with at least its
    ``id``; vLLM adds ``root`` (where it was loaded from) and, for a LoRA module, ``parent``.
    Any error here is fatal: a server that cannot list its models will not answer either."""
    url = endpoint.base_url.rstrip("/") + "/models"

    def send() -> httpx.Response:
        return client.get(url, headers=endpoint.headers(), timeout=endpoint.timeout_s)

    try:
        response, _ = _retried(send, endpoint, url, sleep)
    except CallError as error:
        raise CallError(str(error), fatal=True) from error
    try:
        models = response.json()["data"]
        if not all(isinstance(m, dict) and isinstance(m.get("id"), str) for m in models):
            raise TypeError("an entry of 'data' has no text 'id'")
    except (ValueError, KeyError, TypeError) as error:
        problem = f"{type(error).__name__} {error}; body {_excerpt(response.text)!r}"
        raise CallError(MALFORMED_MODELS.format(url=url, problem=problem), fatal=True) from error
    return models


def _retried(
    send: Callable[[], httpx.Response],
    endpoint: Endpoint,
    url: str,
    sleep: Callable[[float], None],
) -> tuple[httpx.Response, int]:
    """The first good response and its latency in ms (that try's alone: the failed tries and
    the waits between them made no reply)."""
    tries = endpoint.max_retries + 1
    for attempt in range(tries):
        started = time.perf_counter()
        try:
            response = _checked(send, endpoint, url, tries)
        except _Retry as retry:
            if attempt == tries - 1:
                raise CallError(str(retry), fatal=retry.fatal) from retry
            sleep(max(endpoint.backoff_s * 2**attempt, retry.wait_s))
            continue
        return response, round((time.perf_counter() - started) * 1000)
    raise AssertionError("unreachable: the loop returns or raises")


def _checked(
    send: Callable[[], httpx.Response], endpoint: Endpoint, url: str, tries: int
) -> httpx.Response:
    try:
        response = send()
    except httpx.TimeoutException as error:
        raise _Retry(TIMED_OUT.format(url=url, timeout=endpoint.timeout_s, tries=tries)) from error
    except httpx.InvalidURL as error:
        raise CallError(UNREACHABLE.format(url=url, tries=1, error=error), fatal=True) from error
    except httpx.TransportError as error:
        message = UNREACHABLE.format(url=url, tries=tries, error=str(error) or type(error).__name__)
        raise _Retry(message, fatal=True) from error
    status = response.status_code
    if status in (401, 403):
        raise CallError(UNAUTHORIZED.format(url=url, status=status), fatal=True)
    if status == 404:
        raise CallError(NOT_FOUND.format(url=url), fatal=True)
    if status == 429:
        raise _Retry(RATE_LIMITED.format(url=url, tries=tries), _retry_after(response))
    if status >= 500:
        text = _excerpt(response.text)
        raise _Retry(SERVER_ERROR.format(url=url, status=status, tries=tries, body=text))
    if status >= 400:
        raise CallError(REFUSED.format(url=url, status=status, body=_excerpt(response.text)))
    return response


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(max(float(response.headers.get("Retry-After", 0)), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:  # an HTTP date: not worth parsing, the backoff applies
        return 0.0


def _reply(response: httpx.Response, endpoint: Endpoint, latency_ms: int) -> Reply:
    try:
        payload: Any = response.json()
        text = payload["choices"][0]["message"]["content"]
        usage = payload.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        completion_tokens = int(usage.get("completion_tokens") or 0)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as error:
        problem = f"{type(error).__name__} {error}; body {_excerpt(response.text)!r}"
        raise CallError(MALFORMED.format(url=endpoint.url, problem=problem)) from error
    if not isinstance(text, str):
        problem = f"message content is {type(text).__name__}, not text"
        raise CallError(MALFORMED.format(url=endpoint.url, problem=problem))
    return Reply(text, prompt_tokens, completion_tokens, latency_ms)


def _excerpt(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def in_flight(
    items: Iterable[T],
    call: Callable[[T], R],
    *,
    concurrency: int,
    go_on: Callable[[], bool] = lambda: True,
) -> Iterator[tuple[T, R]]:
    """``(item, call(item))`` as each call finishes, with up to ``concurrency`` calls running at
    once in a thread pool. No new call starts once ``go_on()`` is false; calls already running
    finish and are yielded. ``call`` reports its errors in what it returns, never by raising."""
    waiting = iter(items)
    running: dict[Future[R], T] = {}
    with ThreadPoolExecutor(concurrency) as pool:

        def fill() -> None:
            while len(running) < concurrency and go_on():
                item = next(waiting, _DONE)
                if item is _DONE:
                    return
                running[pool.submit(call, item)] = item

        fill()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                yield running.pop(future), future.result()
            fill()


def chats_in_flight(
    endpoint: Endpoint,
    items: Iterable[T],
    messages: Callable[[T], list[dict[str, str]]],
    *,
    concurrency: int,
    go_on: Callable[[], bool] = lambda: True,
    max_tokens: int,
    temperature: float,
    top_p: float | None = None,
    seed: int | None = None,
) -> Iterator[tuple[T, Reply | CallError]]:
    """``(item, the endpoint's reply to messages(item))`` as each call finishes, through one
    HTTP client and ``in_flight``; a call that failed gives its ``CallError`` instead."""

    def ask(item: T) -> Reply | CallError:
        try:
            return chat(
                client,
                endpoint,
                messages(item),
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=top_p,
                seed=seed,
            )
        except CallError as error:
            return error

    with httpx.Client() as client:
        yield from in_flight(items, ask, concurrency=concurrency, go_on=go_on)
