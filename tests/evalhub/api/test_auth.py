"""Token and session authentication."""

import io

from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalhub.api.permissions import TokenRequestThrottle


def test_token_endpoint_exchanges_credentials_for_a_working_token(world, api):
    response = api.post(
        "/api/token/", {"username": world.expert.username, "password": "pw"}, format="json"
    )
    assert response.status_code == 200
    key = response.json()["token"]
    assert Token.objects.get(user=world.expert).key == key

    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    listed = api.get("/api/assignments/")
    assert listed.status_code == 200
    assert {a["token"] for a in listed.json()["results"]} == {
        world.mine.token,
        world.mine_gold.token,
    }


def test_token_is_stable_across_requests(world, api):
    body = {"username": world.manager.username, "password": "pw"}
    first = api.post("/api/token/", body, format="json").json()["token"]
    assert api.post("/api/token/", body, format="json").json()["token"] == first


def test_token_endpoint_rejects_a_wrong_password_with_400(world, api):
    response = api.post(
        "/api/token/", {"username": world.expert.username, "password": "nope"}, format="json"
    )
    assert response.status_code == 400
    assert "non_field_errors" in response.json()
    assert not Token.objects.filter(user=world.expert).exists()


def test_token_endpoint_names_missing_fields(db, api):
    response = api.post("/api/token/", {}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"username", "password"}


def test_token_endpoint_is_throttled_against_password_guessing(world, api):
    body = {"username": world.expert.username, "password": "guess"}
    limit = int(TokenRequestThrottle.rate.split("/")[0])
    statuses = [api.post("/api/token/", body, format="json").status_code for _ in range(limit + 1)]
    assert statuses[:limit] == [400] * limit
    assert statuses[limit] == 429


def test_an_unknown_token_is_401(world, api):
    api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert api.get("/api/assignments/").status_code == 401


def test_manager_token_reaches_manager_endpoints(world, api):
    token = Token.objects.create(user=world.manager)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get("/api/systems/").status_code == 200


def test_expert_token_does_not_reach_manager_endpoints(world, api):
    token = Token.objects.create(user=world.expert)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get("/api/systems/").status_code == 403


def test_inactive_users_token_is_refused(world, api):
    token = Token.objects.create(user=world.expert)
    world.expert.is_active = False
    world.expert.save()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get("/api/assignments/").status_code == 401


def test_drf_create_token_command_prints_the_users_token(world):
    out = io.StringIO()
    call_command("drf_create_token", world.expert.username, stdout=out)
    assert Token.objects.get(user=world.expert).key in out.getvalue()


def test_token_endpoint_takes_json_only(world, api):
    body = {"username": world.expert.username, "password": "pw"}
    response = api.post("/api/token/", body, format="multipart")
    assert response.status_code == 415
    assert not Token.objects.filter(user=world.expert).exists()


def test_token_endpoint_answers_a_logged_in_browser_without_a_csrf_token(world):
    """It authenticates by the credentials in the body alone, so no session is consulted."""
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(world.other_expert)
    body = {"username": world.expert.username, "password": "pw"}
    response = browser.post("/api/token/", body, format="json")
    assert response.status_code == 200
    assert response.json()["token"] == Token.objects.get(user=world.expert).key
