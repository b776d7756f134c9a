"""A judge behind an OpenAI-compatible chat-completions endpoint (vLLM, TGI, llama.cpp's server,
a hosted API), through httpx.

One call asks one question. Connection failures, timeouts, 429 and 5xx answers are retried with
exponential backoff (a 429's Retry-After is honoured, up to a cap); 400, 401, 403 and 404 are
not: asking again gets the same answer. An error that no call to this endpoint can escape (a
refused key, an unknown path or model, a server that stays unreachable) is ``fatal``, so that the
caller stops the run instead of collecting the same error for every comparison.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

UNREACHABLE = "the judge endpoint {url} cannot be reached after {tries} tries: {error}"
TIMED_OUT = "the judge endpoint {url} did not answer within {timeout} s, {tries} tries"
UNAUTHORIZED = (
    "the judge endpoint {url} refused the key (HTTP {status}): set the environment variable "
    "named by the judge's api_key_env to a valid key"
)
NOT_FOUND = "the judge endpoint {url} answered 404: check the base URL (…/v1) and the model name"
RATE_LIMITED = "the judge endpoint {url} is still rate limiting (HTTP 429) after {tries} tries"
SERVER_ERROR = "the judge endpoint {url} failed with HTTP {status} after {tries} tries: {body}"
REFUSED = "the judge endpoint {url} refused the request with HTTP {status}: {body}"
MALFORMED = "the judge endpoint {url} sent a reply that is not a chat completion: {problem}"

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
    sleep: Callable[[float], None] = time.sleep,
) -> Reply:
    """The endpoint's reply to ``messages``, retried as the module docstring says."""
    body = {
        "model": endpoint.model,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": temperature,
    }
    tries = endpoint.max_retries + 1
    for attempt in range(tries):
        started = time.perf_counter()
        try:
            response = _post(client, endpoint, body, tries)
        except _Retry as retry:
            if attempt == tries - 1:
                raise CallError(str(retry), fatal=retry.fatal) from retry
            sleep(max(endpoint.backoff_s * 2**attempt, retry.wait_s))
            continue
        latency_ms = round((time.perf_counter() - started) * 1000)
        return _reply(response, endpoint, latency_ms)
    raise AssertionError("unreachable: the loop returns or raises")


def _post(client: httpx.Client, endpoint: Endpoint, body: dict, tries: int) -> httpx.Response:
    url = endpoint.url
    try:
        response = client.post(
            url, json=body, headers=endpoint.headers(), timeout=endpoint.timeout_s
        )
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
