"""A NUL character anywhere in a request's fields is a 400 naming it, never a server error
(PostgreSQL cannot look up or store text with NUL; the API fuzzer found a rater's username)."""

import json

import pytest
from django.test import Client

from evalhub.middleware import MESSAGE
from evalhub.models import Study
from tests.factories import ManagerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager() -> Client:
    client = Client()
    client.force_login(ManagerFactory())
    return client


def test_a_nul_in_a_json_body_is_a_400_that_names_it(manager):
    body = {"name": "x", "systems": [1, 2], "raters": ["ann\u0000"]}
    response = manager.post("/api/studies/", json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"] == MESSAGE
    assert not Study.objects.exists()


def test_a_nul_in_a_query_or_a_form_field_is_a_400(manager):
    assert manager.get("/runs/new/", {"dataset": "demo\x00"}).status_code == 400
    for encode in ({}, {"content_type": "application/x-www-form-urlencoded"}):
        data = {"dataset": "demo\x00", "name": "run"}
        if encode:
            data = "dataset=demo%00&name=run"
        response = manager.post("/runs/new/", data, **encode)
        assert response.status_code == 400 and MESSAGE in response.content.decode()


def test_the_api_says_who_may_call_before_it_reads_a_body():
    body = json.dumps({"raters": ["ann\u0000"]})
    response = Client().post("/api/studies/1/raters/", body, content_type="application/json")
    assert response.status_code in (401, 403)


def test_requests_without_nul_pass_untouched(manager):
    assert manager.get("/runs/new/", {"dataset": "demo"}).status_code == 200
    body = json.dumps({"name": ""})
    response = manager.post("/api/studies/", body, content_type="application/json")
    assert response.status_code == 400 and "name" in response.json()
