"""``/api/judges/``, ``/api/judge-runs/`` and ``POST /api/studies/<id>/judge/`` for managers
(the permission matrix and the blinding crawl cover everyone else)."""

import os

import pytest
from rest_framework.fields import DateTimeField

from evalhub.models import Judge, JudgeRun
from evalhub.services import judging as j
from tests.evalhub.chat_peers import ok, scripted_server
from tests.factories import ComparisonFactory, StudyFactory

pytestmark = pytest.mark.django_db

HTTP_JUDGE = {
    "name": "qwen-72b",
    "backend": "http",
    "model": "Qwen/Qwen2.5-72B-Instruct",
    "base_url": "http://gpu-box:8000/v1",
    "api_key_env": "VLLM_API_KEY",
    "concurrency": 16,
    "token_budget": 2_000_000,
}


@pytest.fixture
def client(login, manager):
    return login(manager)


@pytest.fixture
def study():
    study = StudyFactory()
    ComparisonFactory(study=study)
    ComparisonFactory(study=study, is_gold=True, gold_answer="a")
    return study


def test_a_manager_defines_an_http_judge_that_names_its_key_variable(client, manager, monkeypatch):
    monkeypatch.setenv("VLLM_API_KEY", "sk-the-real-key")
    response = client.post("/api/judges/", HTTP_JUDGE, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    judge = Judge.objects.get()
    assert body["id"] == judge.pk and body["api_key_env"] == "VLLM_API_KEY"
    assert (judge.backend, judge.model, judge.base_url) == (
        "http",
        "Qwen/Qwen2.5-72B-Instruct",
        "http://gpu-box:8000/v1",
    )
    assert (judge.concurrency, judge.token_budget, judge.created_by) == (16, 2_000_000, manager)
    # What the body left out takes judge_add's defaults.
    assert (judge.max_tokens, judge.temperature, judge.max_retries, judge.template) == (
        16,
        0.0,
        3,
        "",
    )
    assert "sk-the-real-key" not in response.content.decode()


def test_a_local_judge_needs_only_a_name(client):
    response = client.post("/api/judges/", {"name": "small"}, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["backend"], response.json()["model"]) == ("local", "smollm2-135m")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"name": "no spaces"}, "name", j.NAME_INVALID.format(name="no spaces")),
        ({"base_url": "gpu-box:8000"}, "base_url", j.URL_INVALID.format(url="gpu-box:8000")),
        ({"api_key_env": "sk-abc123"}, "api_key_env", j.ENV_INVALID.format(name="sk-abc123")),
        ({"model": " "}, "model", j.MODEL_EMPTY),
        (
            {"concurrency": 0},
            "concurrency",
            j.LIMIT_INVALID.format(field="concurrency", rule="between 1 and 64", value=0),
        ),
        (
            {"token_budget": -1},
            "token_budget",
            j.LIMIT_INVALID.format(
                field="token_budget", rule=f"between 0 (none) and {j.MAX_COUNT}", value=-1
            ),
        ),
        (
            {"backend": "local", "model": "smollm2-135m"},
            "base_url",
            j.URL_FOR_LOCAL.format(url="http://gpu-box:8000/v1"),
        ),
    ],
)
def test_a_refused_judge_is_a_400_naming_the_field_and_nothing_is_stored(
    client, change, field, message
):
    response = client.post("/api/judges/", HTTP_JUDGE | change, format="json")
    assert response.status_code == 400
    assert response.json() == {field: [message]}
    assert not Judge.objects.exists()


def test_a_template_without_the_answers_is_refused_under_template(client):
    response = client.post(
        "/api/judges/", HTTP_JUDGE | {"template": "Which is better?"}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()) == ["template"]
    assert not Judge.objects.exists()


def test_a_second_judge_of_the_same_name_is_refused(client):
    assert client.post("/api/judges/", HTTP_JUDGE, format="json").status_code == 201
    response = client.post("/api/judges/", HTTP_JUDGE | {"model": "other"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"name": [j.NAME_TAKEN.format(name="qwen-72b")]}
    assert Judge.objects.get().model == "Qwen/Qwen2.5-72B-Instruct"


def test_a_value_of_the_wrong_type_is_refused_by_the_form(client):
    response = client.post("/api/judges/", HTTP_JUDGE | {"concurrency": "many"}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["concurrency"]
    assert not Judge.objects.exists()


def test_the_list_and_detail_show_the_definition_and_the_detail_the_template(client):
    j.judge_create(name="b-judge", backend="http", model="m", base_url="http://h/v1")
    j.judge_create(name="a-judge", template="{prompt} {answer_a} {answer_b}")
    listed = client.get("/api/judges/").json()
    names = [row["name"] for row in listed["results"]]
    assert names == ["a-judge", "b-judge"]
    assert "template" not in listed["results"][0]
    detail = client.get(f"/api/judges/{Judge.objects.get(name='a-judge').pk}/").json()
    assert detail["template"] == "{prompt} {answer_a} {answer_b}"


def test_queueing_a_judge_answers_the_run_and_a_second_call_the_same_run(client, study):
    j.judge_create(name="remote", backend="http", model="m", base_url="http://h/v1")
    url = f"/api/studies/{study.pk}/judge/"
    first = client.post(url, {"judge": "remote"}, format="json")
    assert first.status_code == 202, first.content
    run = JudgeRun.objects.get()
    assert first.json() | {"created_at": None} == {
        "id": run.pk,
        "judge": "remote",
        "study": study.pk,
        "status": "queued",
        "verdicts_done": 0,
        "tokens_used": 0,
        "errors": [],
        "error": "",
        "worker": "",
        "heartbeat_at": None,
        "created_at": None,
        "started_at": None,
        "finished_at": None,
    }
    again = client.post(url, {"judge": "remote"}, format="json")
    assert again.json()["id"] == run.pk and JudgeRun.objects.count() == 1


def test_queueing_without_a_judge_defines_and_queues_the_packaged_one(client, study):
    response = client.post(f"/api/studies/{study.pk}/judge/", {}, format="json")
    assert response.status_code == 202
    assert response.json()["judge"] == "smollm2-135m"
    assert JudgeRun.objects.get().judge.backend == "local"


def test_an_unknown_judge_or_a_study_with_nothing_to_judge_is_a_400_naming_it(client, study):
    response = client.post(f"/api/studies/{study.pk}/judge/", {"judge": "nope"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"judge": [j.UNKNOWN_JUDGE.format(name="nope", known="smollm2-135m")]}
    empty = StudyFactory()
    ComparisonFactory(study=empty, is_gold=True, gold_answer="a")
    response = client.post(f"/api/studies/{empty.pk}/judge/", {}, format="json")
    assert response.status_code == 400
    assert response.json() == {"study": [j.NO_COMPARISONS.format(study=empty.name)]}
    assert not JudgeRun.objects.exists()


def test_a_missing_study_is_a_404(client):
    assert client.post("/api/studies/987654/judge/", {}, format="json").status_code == 404


def test_a_run_done_through_the_api_is_listed_for_its_study_with_its_counts(
    client, study, django_capture_on_commit_callbacks
):
    other = StudyFactory()
    ComparisonFactory(study=other)
    with scripted_server(ok("A")) as server:
        j.judge_create(name="remote", backend="http", model="m", base_url=server.url)
        with django_capture_on_commit_callbacks(execute=True):
            client.post(f"/api/studies/{study.pk}/judge/", {"judge": "remote"}, format="json")
    j.judge_run_create(judge=Judge.objects.get(), study=other)
    rows = client.get(f"/api/judge-runs/?study={study.pk}").json()["results"]
    assert len(rows) == 1
    row = rows[0]
    # One non-gold comparison, asked in both orders, at 10 + 1 tokens a reply.
    assert (row["status"], row["verdicts_done"], row["tokens_used"]) == ("succeeded", 2, 22)
    assert (row["judge"], row["errors"]) == ("remote", [])
    # Who ran it and when it last reported: what tells a live run from a dead one.
    run = JudgeRun.objects.get(study=study)
    heartbeat = DateTimeField().to_representation(run.heartbeat_at)
    assert (row["worker"], row["heartbeat_at"]) == (run.worker, heartbeat)
    assert row["worker"].endswith(f":{os.getpid()}")
    assert len(client.get("/api/judge-runs/").json()["results"]) == 2


def test_a_malformed_study_filter_is_a_400_naming_it(client):
    response = client.get("/api/judge-runs/?study=x")
    assert response.status_code == 400 and list(response.json()) == ["study"]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            {"max_tokens": 10**20},
            "max_tokens",
            j.LIMIT_INVALID.format(
                field="max_tokens", rule=f"between 1 and {j.MAX_COUNT}", value=10**20
            ),
        ),
        (
            {"base_url": "http://" + "x" * 600},
            "base_url",
            j.TOO_LONG.format(field="base_url", limit=500, length=607),
        ),
    ],
)
def test_a_value_beyond_what_the_database_holds_is_a_400_not_a_crash(
    client, change, field, message
):
    response = client.post("/api/judges/", HTTP_JUDGE | change, format="json")
    assert response.status_code == 400
    assert response.json() == {field: [message]}
    assert not Judge.objects.exists()
