"""/api/preference-sets/: list, detail with the rules, build, and the JSONL download."""

import json

import pytest

from evalhub.models import PreferenceSet
from evalhub.services import preferences as svc
from tests.evalhub.preference_fixtures import feedback_study, judge

pytestmark = pytest.mark.django_db


@pytest.fixture
def study():
    """A feedback study whose first prompt the raters decided for the adapter, with a
    correction; the second is a tie."""
    study, (ann, ben), _ = feedback_study(prompts=2, raters=2)
    first, second = study.comparisons.order_by("id")
    judge(first, ann, "adapter")
    judge(first, ben, "adapter", correction="Ben's answer.")
    judge(second, ann, "tie")
    return study


def test_a_manager_builds_lists_reads_and_downloads_a_set(login, manager, study):
    client = login(manager)
    created = client.post(
        "/api/preference-sets/", {"study": study.pk, "name": "api"}, format="json"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    built = PreferenceSet.objects.get()
    assert (body["name"], body["version"], body["dataset"]) == ("api", 1, "api-v1")
    # one pair by the raters, two of the correction over the answers its rater saw
    assert (body["pair_count"], body["sft_count"], body["study"]) == (3, 1, study.pk)
    assert body["judgments"] == sorted(built.judgments.values_list("pk", flat=True))
    assert body["rules"] == built.rules
    assert body["created_by"] == manager.username

    listed = client.get("/api/preference-sets/").json()
    assert [(s["name"], s["version"]) for s in listed["results"]] == [("api", 1)]
    assert client.get(f"/api/preference-sets/{built.pk}/").json() == body

    pairs = client.get(f"/api/preference-sets/{built.pk}/download/")
    assert pairs.status_code == 200
    assert pairs["Content-Disposition"] == 'attachment; filename="api-v1-pairs.jsonl"'
    lines = [json.loads(line) for line in pairs.content.decode().splitlines()]
    first = study.comparisons.order_by("id").first()
    assert len(lines) == 3 and {str(p["prompt"]) for p in lines} == {str(first.prompt.messages)}
    rows = client.get(f"/api/preference-sets/{built.pk}/download/?layout=messages")
    assert len(rows.content.decode().splitlines()) == 4


def test_corrections_may_stay_sft_rows_only(login, manager, study):
    client = login(manager)
    body = client.post(
        "/api/preference-sets/",
        {"study": study.pk, "name": "plain", "correction_pairs": False},
        format="json",
    ).json()
    assert (body["pair_count"], body["sft_count"]) == (1, 1)
    assert body["rules"]["correction_pairs"]["on"] is False


def test_a_bad_layout_is_a_400_naming_the_parameter(login, manager, study):
    built = svc.preference_set_build(study=study, name="s")
    response = login(manager).get(f"/api/preference-sets/{built.pk}/download/?layout=csv")
    assert response.status_code == 400
    assert set(response.json()) == {"layout"}


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "bad name"}, "name", svc.ERROR_NAME.format(name="bad name")),
    ],
)
def test_a_refused_build_names_the_field(login, manager, study, body, field, message):
    response = login(manager).post(
        "/api/preference-sets/", {"study": study.pk, **body}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {field: [message]}
    assert not PreferenceSet.objects.exists()


def test_a_test_study_is_refused_naming_the_study(login, manager):
    study, (ann, _), _ = feedback_study(prompts=1, raters=2, split="test")
    judge(study.comparisons.get(), ann, "base")
    response = login(manager).post(
        "/api/preference-sets/", {"study": study.pk, "name": "leak"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"study": [svc.ERROR_TEST_PROMPTS]}


def test_experts_cannot_build(login, expert, study):
    response = login(expert).post(
        "/api/preference-sets/", {"study": study.pk, "name": "x"}, format="json"
    )
    assert response.status_code == 403
    assert not PreferenceSet.objects.exists()
