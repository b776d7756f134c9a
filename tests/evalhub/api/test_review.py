"""The reviewer's API: who may call it (role × endpoint × status), the item in the caller's
frame, the final call stored in storage order, and bad input refused naming the field."""

import pytest
from rest_framework.test import APIClient

from evalhub.models import Adjudication
from evalhub.selectors.review import disputed_comparisons
from evalhub.services.adjudication import ERROR_FINAL_CALL
from tests.evalhub.review_fixtures import disputed_study, raters_opposite_to
from tests.factories import ExpertFactory, ManagerFactory, ReviewerFactory

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "expert", "reviewer", "other_reviewer", "manager")
# (method, path template, body, statuses by role). {token} is the reviewer's own.
MATRIX = [
    ("get", "/api/review/studies/{study}/", None, (401, 403, 200, 200, 200)),
    ("get", "/api/review/studies/987654321/", None, (401, 403, 404, 404, 404)),
    ("get", "/api/review/studies/{study}/{token}/", None, (401, 403, 200, 404, 404)),
    ("get", "/api/review/studies/{study}/{token}/final-call/", None, (401, 403, 405, 405, 405)),
    (
        "put",
        "/api/review/studies/{study}/{token}/final-call/",
        {"choice": "tie"},
        (401, 403, 201, 404, 404),
    ),
    ("put", "/api/review/studies/{study}/{token}/final-call/", {}, (401, 403, 400, 404, 404)),
    # Reviewers reach no manager endpoint.
    ("get", "/api/studies/", None, (401, 403, 403, 403, 200)),
    ("get", "/api/studies/{study}/report/", None, (401, 403, 403, 403, 200)),
    ("get", "/api/comparisons/", None, (401, 403, 403, 403, 200)),
    ("get", "/api/judgments/", None, (401, 403, 403, 403, 200)),
    ("get", "/api/runs/", None, (401, 403, 403, 403, 200)),
    ("get", "/api/datasets/", None, (401, 403, 403, 403, 200)),
    ("get", "/api/systems/", None, (401, 403, 403, 403, 200)),
]


@pytest.fixture
def world():
    disputes = disputed_study()
    users = {
        "anonymous": None,
        "expert": ExpertFactory(),
        "reviewer": ReviewerFactory(),
        "other_reviewer": ReviewerFactory(),
        "manager": ManagerFactory(),
    }
    queue = disputed_comparisons(study=disputes.study, reviewer=users["reviewer"])
    return {"disputes": disputes, "users": users, "queue": queue}


def _client(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.parametrize("role_index", range(len(ROLES)), ids=ROLES)
@pytest.mark.parametrize("case", range(len(MATRIX)))
def test_permission_matrix(world, case, role_index):
    method, path, body, expected = MATRIX[case]
    url = path.format(study=world["disputes"].study.pk, token=world["queue"][0].token)
    client = _client(world["users"][ROLES[role_index]])
    response = getattr(client, method)(url, body or {}, format="json")
    assert response.status_code == expected[role_index], response.content[:300]


def test_the_queue_and_the_item_read_in_the_callers_frame(world):
    reviewer, disputes = world["users"]["reviewer"], world["disputes"]
    raters_opposite_to(disputes, reviewer)
    client = _client(reviewer)
    queue = client.get(f"/api/review/studies/{disputes.study.pk}/").json()
    assert [e["token"] for e in queue] == [d.token for d in world["queue"]]
    split = next(d for d in world["queue"] if d.comparison == disputes.split.pk)
    item = client.get(f"/api/review/studies/{disputes.study.pk}/{split.token}/").json()
    output_a, output_b = disputes.split.output_a.text, disputes.split.output_b.text
    shown = (output_a, output_b) if split.left_is_a else (output_b, output_a)
    assert (item["responses"]["a"], item["responses"]["b"]) == shown
    # Rater 1 preferred output_a, Rater 2 output_b (review_fixtures).
    expected = ["a", "b"] if split.left_is_a else ["b", "a"]
    assert [j["choice"] for j in item["judgments"]] == expected
    assert [j["rater"] for j in item["judgments"]] == ["Rater 1", "Rater 2"]
    assert item["final_call"] is None


def test_put_stores_the_final_call_in_storage_order_and_a_revision_answers_200(world):
    reviewer, disputes = world["users"]["reviewer"], world["disputes"]
    client = _client(reviewer)
    split = next(d for d in world["queue"] if d.comparison == disputes.split.pk)
    url = f"/api/review/studies/{disputes.study.pk}/{split.token}/final-call/"
    created = client.put(url, {"choice": "b", "note": "A is wrong"}, format="json")
    assert created.status_code == 201
    assert created.json() == {"choice": "b", "note": "A is wrong"}
    call = Adjudication.objects.get()
    assert call.verdict == ("b" if split.left_is_a else "a")
    revised = client.put(url, {"choice": "tie"}, format="json")
    assert revised.status_code == 200
    assert Adjudication.objects.get().revisions == 1


@pytest.mark.parametrize("body", [{}, {"choice": "left"}])
def test_a_final_call_without_a_valid_choice_is_a_400_naming_the_field(world, body):
    disputes = world["disputes"]
    client = _client(world["users"]["reviewer"])
    url = f"/api/review/studies/{disputes.study.pk}/{world['queue'][0].token}/final-call/"
    response = client.put(url, body, format="json")
    assert response.status_code == 400
    assert response.json() == {"choice": [ERROR_FINAL_CALL]}
    assert not Adjudication.objects.exists()


def test_a_note_too_long_is_a_400_naming_the_field(world):
    disputes = world["disputes"]
    client = _client(world["users"]["reviewer"])
    url = f"/api/review/studies/{disputes.study.pk}/{world['queue'][0].token}/final-call/"
    response = client.put(url, {"choice": "a", "note": "x" * 5001}, format="json")
    assert response.status_code == 400 and "note" in response.json()
    assert not Adjudication.objects.exists()
