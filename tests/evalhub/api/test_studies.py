"""Managers create studies, change their status and add raters through the study services."""

import pytest

from evalhub.api.errors import _FIELD_OF_MESSAGE, study_validation_error
from evalhub.models import Assignment, Comparison, Study, StudyStatus
from evalhub.services import studies as svc
from tests import factories as f


@pytest.fixture
def answered(db):
    """Two systems that both answered three prompts."""
    run = f.FineTuneRunFactory(name="walrus-run")
    base = f.SystemFactory(name="walrus-base")
    adapter = f.SystemFactory(name="walrus-adapter", run=run, kind="adapter")
    for _ in range(3):
        prompt = f.PromptFactory(dataset=run.dataset)
        f.OutputFactory(system=base, prompt=prompt)
        f.OutputFactory(system=adapter, prompt=prompt)
    return run, base, adapter


def _create(client, **body):
    return client.post("/api/studies/", body, format="json")


def test_manager_creates_a_study_with_raters(manager, login, answered):
    run, base, adapter = answered
    raters = [f.ExpertFactory(), f.ExpertFactory()]
    response = _create(
        login(manager),
        name="Clinic tone",
        systems=[base.id, adapter.id],
        run=run.id,
        raters=[r.username for r in raters],
        overlap=2,
        criteria=["correctness", "style"],
        guidelines="Be strict.",
        show_reference=True,
        seed=7,
    )
    assert response.status_code == 201, response.content
    data = response.json()
    study = Study.objects.get(pk=data["id"])
    assert (study.status, study.created_by, study.run) == (StudyStatus.DRAFT, manager, run)
    assert (study.criteria, study.seed, study.overlap) == (["correctness", "style"], 7, 2)
    assert data["comparison_count"] == 3 == Comparison.objects.filter(study=study).count()
    assert data["assignment_count"] == 6
    assert {s["name"] for s in data["systems"]} == {"walrus-base", "walrus-adapter"}


def test_gold_items_are_mixed_in(manager, login, answered):
    _, base, adapter = answered
    gold = [{"prompt": "2+2?", "better": "4", "worse": "5"}]
    response = _create(login(manager), name="With gold", systems=[base.id, adapter.id], gold=gold)
    assert response.status_code == 201, response.content
    assert Comparison.objects.filter(study_id=response.json()["id"], is_gold=True).count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"systems": []}, "name"),
        ({"name": "x", "systems": None}, "systems"),
        ({"name": "x", "systems": [987654]}, "systems"),
        ({"name": "x", "systems": "all"}, "systems"),
        ({"name": "x", "raters": ["nobody"]}, "raters"),
        ({"name": "x", "overlap": "two"}, "overlap"),
        ({"name": "x", "criteria": "style"}, "criteria"),
        ({"name": "x", "gold": [1, 2]}, "gold"),
    ],
)
def test_malformed_study_requests_are_400_naming_the_field(manager, login, answered, body, field):
    _, base, adapter = answered
    body = {"systems": [base.id, adapter.id], **body}
    response = _create(login(manager), **body)
    assert response.status_code == 400
    assert field in response.json()
    assert not Study.objects.exists()


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"name": "About walrus-adapter"}, "name", svc.ERROR_NAME_REVEALS),
        ({"overlap": 0}, "overlap", svc.ERROR_OVERLAP),
        ({"prompts": 9}, "prompts", svc.ERROR_NOT_ENOUGH_PROMPTS),
        ({"criteria": ["style", "Style"]}, "criteria", svc.ERROR_CRITERION),
        ({"overlap": 3, "raters": "two"}, "raters", svc.ERROR_TOO_FEW_RATERS),
        ({"gold": [{"prompt": "q", "better": "same", "worse": "same"}]}, "gold", None),
    ],
)
def test_service_refusals_are_400_naming_the_field(
    manager, login, answered, change, field, message
):
    _, base, adapter = answered
    body = {"name": "Fine name", "systems": [base.id, adapter.id], **change}
    if body.get("raters") == "two":
        body["raters"] = [f.ExpertFactory().username, f.ExpertFactory().username]
    response = _create(login(manager), **body)
    assert response.status_code == 400, response.content
    errors = response.json()
    assert list(errors) == [field]
    if message is not None:
        assert errors[field][0].startswith(message.split("{")[0])
    assert not Study.objects.exists()


def test_only_one_system_is_refused_with_the_service_message(manager, login, answered):
    _, base, _ = answered
    response = _create(login(manager), name="Solo", systems=[base.id])
    assert response.status_code == 400
    assert response.json() == {"systems": [svc.ERROR_TOO_FEW_SYSTEMS.format(count=1)]}


def _study_with_raters(client, answered, raters) -> int:
    _, base, adapter = answered
    body = {"name": "Flow", "systems": [base.id, adapter.id], "overlap": 1}
    return _create(client, raters=[r.username for r in raters], **body).json()["id"]


def test_status_moves_through_the_service(manager, login, answered):
    client = login(manager)
    study_id = _study_with_raters(client, answered, [f.ExpertFactory()])
    opened = client.post(f"/api/studies/{study_id}/status/", {"status": "open"}, format="json")
    assert opened.status_code == 200 and opened.json()["status"] == "open"
    closed = client.post(f"/api/studies/{study_id}/status/", {"status": "closed"}, format="json")
    assert closed.json()["status"] == "closed"
    refused = client.post(f"/api/studies/{study_id}/status/", {"status": "paused"}, format="json")
    assert refused.status_code == 400
    assert refused.json() == {
        "status": [svc.ERROR_STATUS_TRANSITION.format(current="closed", target="paused")]
    }
    assert Study.objects.get(pk=study_id).status == StudyStatus.CLOSED


def test_opening_without_raters_is_refused(manager, login, answered):
    client = login(manager)
    study_id = _study_with_raters(client, answered, [])
    response = client.post(f"/api/studies/{study_id}/status/", {"status": "open"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"status": [svc.ERROR_OPEN_WITHOUT_RATERS]}


def test_unknown_status_is_400(manager, login, answered):
    client = login(manager)
    study_id = _study_with_raters(client, answered, [])
    response = client.post(f"/api/studies/{study_id}/status/", {"status": "done"}, format="json")
    assert response.status_code == 400 and "status" in response.json()


def test_added_raters_get_blinded_work_they_can_fetch(manager, login, answered, api):
    client = login(manager)
    study_id = _study_with_raters(client, answered, [f.ExpertFactory()])
    newcomer = f.ExpertFactory()
    body = {"raters": [newcomer.username], "overlap": 2}  # with overlap 1 there is no gap to fill
    response = client.post(f"/api/studies/{study_id}/raters/", body, format="json")
    assert response.status_code == 200, response.content
    created = response.json()["assignments_created"]
    assert created == Assignment.objects.filter(rater=newcomer).count() == 3
    assert response.json()["study"]["overlap"] == 2
    client.post(f"/api/studies/{study_id}/status/", {"status": "open"}, format="json")

    client.force_login(newcomer)
    listed = client.get(f"/api/assignments/?study={study_id}").json()
    assert listed["count"] == created
    assert "walrus" not in str(listed)


def test_raising_overlap_below_current_is_refused(manager, login, answered):
    client = login(manager)
    study_id = _study_with_raters(client, answered, [f.ExpertFactory(), f.ExpertFactory()])
    Study.objects.filter(pk=study_id).update(overlap=2)
    response = client.post(
        f"/api/studies/{study_id}/raters/", {"raters": [], "overlap": 1}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"overlap": [svc.ERROR_OVERLAP_LOWERED.format(current=2, overlap=1)]}


@pytest.mark.parametrize(("template", "field"), list(_FIELD_OF_MESSAGE.items()))
def test_every_study_error_constant_maps_to_its_field(template, field):
    message = template.format_map(_Anything())
    assert study_validation_error(svc.StudyError(message)).detail == {field: [message]}


def test_an_unmapped_study_error_is_a_non_field_error():
    error = study_validation_error(svc.StudyError("Something else went wrong."))
    assert error.detail == {"non_field_errors": ["Something else went wrong."]}


class _Anything(dict):
    """Fills every ``{placeholder}`` of a message template with a sample value."""

    def __missing__(self, key: str) -> str:
        return f"<{key}>"
