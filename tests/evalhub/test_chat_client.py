"""The chat-completions client (the judge's and served generation's) against real servers on this
machine: llama-cpp-python's server with the packaged SmolLM2, a port nobody listens on, and a
scripted server for 429, 5xx, malformed bodies and slowness."""

import json
import threading
import time

import httpx
import pytest

from evalhub.chat_client import (
    MALFORMED,
    NOT_FOUND,
    REFUSED,
    TIMED_OUT,
    UNAUTHORIZED,
    UNREACHABLE,
    CallError,
    Endpoint,
    chat,
    chats_in_flight,
    in_flight,
    served_models,
)
from tests.evalhub.chat_peers import (
    LLAMA_KEY,
    LLAMA_MODEL,
    completion,
    free_port,
    ok,
    scripted_server,
)

MESSAGES = [{"role": "user", "content": "Which is better, A: 'Paris' or B: 'Lyon'? Say A or B."}]


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def ask(endpoint: Endpoint, sleep=None) -> object:
    with httpx.Client() as client:
        return chat(
            client,
            endpoint,
            MESSAGES,
            max_tokens=8,
            temperature=0.0,
            sleep=Sleeps() if sleep is None else sleep,
        )


def test_the_real_server_answers_with_text_and_token_counts(llama):
    reply = ask(Endpoint(llama, "smollm2", api_key=LLAMA_KEY))
    assert reply.text.strip()
    assert reply.prompt_tokens > 10 and 1 <= reply.completion_tokens <= 8
    assert reply.latency_ms > 0


def test_a_wrong_key_is_fatal_and_not_retried(llama):
    sleeps = Sleeps()
    with pytest.raises(CallError) as error:
        ask(Endpoint(llama, "smollm2", api_key="wrong"), sleeps)
    url = f"{llama}/chat/completions"
    assert str(error.value) == UNAUTHORIZED.format(url=url, status=401)
    assert error.value.fatal and sleeps == []


def test_a_port_nobody_listens_on_is_retried_with_backoff_then_fatal():
    url = f"http://127.0.0.1:{free_port()}/v1"
    sleeps = Sleeps()
    with pytest.raises(CallError) as error:
        ask(Endpoint(url, "m", max_retries=3, backoff_s=0.5), sleeps)
    assert str(error.value).startswith(
        UNREACHABLE.format(url=f"{url}/chat/completions", tries=4, error="")
    )
    assert error.value.fatal
    assert sleeps == [0.5, 1.0, 2.0]  # exponential, none after the last try


def test_429_waits_as_long_as_retry_after_says_then_succeeds():
    limited = (429, '{"error": "slow down"}', {"Retry-After": "3"}, 0.0)
    with scripted_server(limited, ok("B")) as server:
        sleeps = Sleeps()
        reply = ask(Endpoint(server.url, "m", backoff_s=0.5), sleeps)
    assert reply.text == "B" and (reply.prompt_tokens, reply.completion_tokens) == (10, 1)
    assert sleeps == [3.0]
    assert len(server.requests) == 2


def test_server_errors_are_retried_and_a_persistent_one_reported():
    failing = (503, "overloaded", {}, 0.0)
    with scripted_server(failing, failing, ok("A")) as server:
        assert ask(Endpoint(server.url, "m", max_retries=2)).text == "A"
    with scripted_server(failing) as server, pytest.raises(CallError) as error:
        ask(Endpoint(server.url, "m", max_retries=1))
    assert "failed with HTTP 503 after 2 tries: overloaded" in str(error.value)
    assert not error.value.fatal and len(server.requests) == 2


@pytest.mark.parametrize(
    ("status", "message", "fatal"),
    [(400, REFUSED, False), (404, NOT_FOUND, True)],
)
def test_client_errors_are_not_retried(status, message, fatal):
    with scripted_server((status, "context too long", {}, 0.0)) as server:
        with pytest.raises(CallError) as error:
            ask(Endpoint(server.url, "m"))
        url = f"{server.url}/chat/completions"
        assert str(error.value) == message.format(url=url, status=status, body="context too long")
        assert error.value.fatal is fatal
        assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("<html>gateway</html>", "JSONDecodeError"),
        (json.dumps({"choices": []}), "IndexError"),
        (json.dumps({"choices": [{"message": {"content": None}}]}), "content is NoneType"),
    ],
)
def test_a_malformed_reply_is_an_error_naming_the_problem(body, problem):
    with scripted_server((200, body, {}, 0.0)) as server, pytest.raises(CallError) as error:
        ask(Endpoint(server.url, "m"))
    prefix = MALFORMED.format(url=f"{server.url}/chat/completions", problem="")
    assert str(error.value).startswith(prefix) and problem in str(error.value)
    assert not error.value.fatal and len(server.requests) == 1


def test_a_slow_server_times_out_and_is_retried():
    with scripted_server((200, json.dumps({}), {}, 1.0)) as server, pytest.raises(CallError) as e:
        ask(Endpoint(server.url, "m", timeout_s=0.2, max_retries=1))
    url = f"{server.url}/chat/completions"
    assert str(e.value) == TIMED_OUT.format(url=url, timeout=0.2, tries=2)
    assert len(server.requests) == 2


def test_the_request_carries_model_settings_and_key():
    with scripted_server(ok("tie")) as server:
        ask(Endpoint(server.url, "big-judge", api_key="s3cret"))
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["Authorization"] == "Bearer s3cret"
    assert request["body"] == {
        "model": "big-judge",
        "messages": MESSAGES,
        "max_tokens": 8,
        "temperature": 0.0,
    }


def list_models(endpoint: Endpoint) -> list[dict]:
    with httpx.Client() as client:
        return served_models(client, endpoint, sleep=Sleeps())


def test_top_p_and_seed_are_sent_only_when_given():
    with scripted_server(ok("x")) as server, httpx.Client() as client:
        endpoint = Endpoint(server.url, "m")
        chat(client, endpoint, MESSAGES, max_tokens=8, temperature=0.7, top_p=0.9, seed=3)
        chat(client, endpoint, MESSAGES, max_tokens=8, temperature=0.0)
    sent = [r["body"] for r in server.requests]
    assert (sent[0]["top_p"], sent[0]["seed"]) == (0.9, 3)
    assert "top_p" not in sent[1] and "seed" not in sent[1]


def test_the_real_server_lists_the_model_it_serves(llama):
    models = list_models(Endpoint(llama, "any", api_key=LLAMA_KEY))
    assert [m["id"] for m in models] == [LLAMA_MODEL]


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ((200, json.dumps({"data": [{"object": "model"}]}), {}, 0.0), "has no text 'id'"),
        ((200, json.dumps(completion("A")), {}, 0.0), "KeyError 'data'"),
        ((503, "overloaded", {}, 0.0), "failed with HTTP 503 after 2 tries"),
    ],
)
def test_any_error_while_listing_models_is_fatal(answer, problem):
    with scripted_server(answer) as server, pytest.raises(CallError) as error:
        list_models(Endpoint(server.url, "m", max_retries=1))
    assert problem in str(error.value) and error.value.fatal
    assert server.requests[0]["method"] == "GET" and server.requests[0]["path"] == "/v1/models"


def test_the_public_url_drops_user_and_password():
    endpoint = Endpoint("https://alice:s3cret@llm.example:8000/v1", "m")
    assert endpoint.public_url == "https://llm.example:8000/v1"


def test_in_flight_runs_at_most_concurrency_calls_and_pairs_each_result_with_its_item():
    lock, running, most = threading.Lock(), [0], [0]

    def call(item: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.01 * (item % 3))  # finish out of order
        with lock:
            running[0] -= 1
        return item * item

    pairs = list(in_flight(range(12), call, concurrency=3))
    assert sorted(pairs) == [(i, i * i) for i in range(12)]
    assert most[0] <= 3


def test_in_flight_starts_no_call_once_told_to_stop():
    started = []

    def call(item: int) -> int:
        started.append(item)
        return item

    results = in_flight(range(10), call, concurrency=1, go_on=lambda: len(started) < 4)
    assert [item for item, _ in results] == [0, 1, 2, 3]


def test_chats_in_flight_pairs_each_item_with_its_reply_or_its_error():
    questions = ["first", "second", "third"]
    refused = (400, "context too long", {}, 0.0)
    with scripted_server(ok("A"), refused, ok("C")) as server:
        pairs = list(
            chats_in_flight(
                Endpoint(server.url, "m"),
                questions,
                lambda question: [{"role": "user", "content": question}],
                concurrency=1,  # the script's answers then go to the questions in order
                max_tokens=5,
                temperature=0.5,
                seed=7,
            )
        )
    assert [question for question, _ in pairs] == questions
    (_, first), (_, second), (_, third) = pairs
    assert (first.text, third.text) == ("A", "C")
    assert isinstance(second, CallError)
    url = f"{server.url}/chat/completions"
    assert str(second) == REFUSED.format(url=url, status=400, body="context too long")
    sent = [request["body"] for request in server.requests]
    assert [body["messages"][0]["content"] for body in sent] == questions
    assert all((b["max_tokens"], b["temperature"], b["seed"]) == (5, 0.5, 7) for b in sent)
    assert all("top_p" not in body for body in sent)
