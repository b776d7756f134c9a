"""Submitting and revising a judgment through the API goes through ``judgment_submit``: one
judgment per assignment, in the terms the rater saw."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalhub.api import rater_serializers
from evalhub.api.permissions import JudgmentRateThrottle
from evalhub.api.rater_views import ERROR_NO_JUDGMENT
from evalhub.middleware import MESSAGE as NUL_MESSAGE
from evalhub.models import Judgment, StudyStatus
from evalhub.services import judgments


def _url(assignment) -> str:
    return f"/api/assignments/{assignment.token}/judgment/"


def test_submit_then_revise_keeps_exactly_one_judgment(world, login):
    client = login(world.expert)
    first = client.put(_url(world.mine), {"choice": "a", "time_on_task_ms": 4200}, format="json")
    assert first.status_code == 201
    assert first.json()["choice"] == "a" and first.json()["revisions"] == 0

    revised = client.put(
        _url(world.mine),
        {"choice": "tie", "comment": "on reflection", "criterion_scores": {"style": {"a": 2}}},
        format="json",
    )
    assert revised.status_code == 200
    stored = Judgment.objects.get(assignment=world.mine)
    assert Judgment.objects.filter(assignment=world.mine).count() == 1
    assert (stored.choice, stored.comment, stored.revisions) == ("tie", "on reflection", 1)
    assert stored.criterion_scores == {"style": {"a": 2}}
    assert stored.time_on_task_ms == 4200  # the first verdict's time is kept


def test_repeating_the_same_submit_is_not_a_revision(world, login):
    client = login(world.expert)
    body = {"choice": "b", "criterion_scores": {"correctness": {"a": 1, "b": 5}}}
    assert client.put(_url(world.mine), body, format="json").status_code == 201
    assert client.put(_url(world.mine), body, format="json").status_code == 200
    assert Judgment.objects.get(assignment=world.mine).revisions == 0


def test_choice_a_is_stored_as_the_left_response(world, login):
    # The expert's left response is the adapter's output: "a" must stay "a" (display terms).
    login(world.expert).put(_url(world.mine), {"choice": "a"}, format="json")
    judgment = Judgment.objects.get(assignment=world.mine)
    assert judgment.choice == "a"
    assert judgment.assignment.left_output.system == world.adapter


def test_own_judgment_can_be_read_back(world, login):
    client = login(world.expert)
    missing = client.get(_url(world.mine))
    assert missing.status_code == 404 and missing.json()["detail"] == ERROR_NO_JUDGMENT
    client.put(_url(world.mine), {"choice": "both_bad", "flagged": True, "flag_reason": "x"})
    data = client.get(_url(world.mine)).json()
    assert (data["choice"], data["flagged"], data["flag_reason"]) == ("both_bad", True, "x")
    assert client.get(f"/api/assignments/{world.mine.token}/").json()["judgment"] == data


def test_paused_study_refuses_submissions_with_409(world, login):
    world.study.status = StudyStatus.PAUSED
    world.study.save()
    response = login(world.expert).put(_url(world.mine), {"choice": "a"}, format="json")
    assert response.status_code == 409
    assert response.json()["detail"] == judgments.ERROR_STUDY_NOT_OPEN
    assert not Judgment.objects.filter(assignment=world.mine).exists()


def test_another_raters_assignment_cannot_be_judged(world, login):
    response = login(world.expert).put(_url(world.theirs), {"choice": "a"}, format="json")
    assert response.status_code == 404
    assert Judgment.objects.get(assignment=world.theirs).choice == "b"  # untouched


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "choice", None),
        ({"choice": "left"}, "choice", None),
        (
            {"choice": "a", "criterion_scores": {"fluency": {"a": 3}}},
            "criterion_scores",
            judgments.ERROR_UNKNOWN_CRITERION.format(name="fluency"),
        ),
        (
            {"choice": "a", "criterion_scores": {"style": {"a": 6}}},
            "criterion_scores",
            judgments.ERROR_SCORE.format(value=6, name="style", side="a"),
        ),
        (
            {"choice": "a", "criterion_scores": {"style": {"left": 3}}},
            "criterion_scores",
            judgments.ERROR_SCORE.format(value=3, name="style", side="left"),
        ),
        (
            {"choice": "a", "criterion_scores": {"style": {"a": True}}},
            "criterion_scores",
            judgments.ERROR_SCORE.format(value=True, name="style", side="a"),
        ),
        (
            {"choice": "a", "criterion_scores": ["style", 3]},
            "criterion_scores",
            rater_serializers.ERROR_CRITERIA_SHAPE,
        ),
        ({"choice": "a", "comment": "x" * (judgments.MAX_COMMENT + 1)}, "comment", None),
        ({"choice": "a", "flag_reason": "x" * 201, "flagged": True}, "flag_reason", None),
        (
            {"choice": "a", "correction": "x" * 10_001},
            "correction",
            "A better answer is limited to 10,000 characters; yours has 10,001.",
        ),
        ({"choice": "a", "time_on_task_ms": -5}, "time_on_task_ms", None),
        ({"choice": "a", "time_on_task_ms": "soon"}, "time_on_task_ms", None),
        ({"choice": "skip"}, "flag_reason", judgments.ERROR_SKIP_REASON),
        ({"choice": "skip", "flagged": True, "flag_reason": "  "}, "flag_reason", None),
    ],
)
def test_invalid_judgments_are_400_naming_the_field(world, login, body, field, message):
    response = login(world.expert).put(_url(world.mine), body, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {field}
    if message is not None:
        assert errors[field] == [message]
    assert not Judgment.objects.filter(assignment=world.mine).exists()


def test_judgment_writes_are_rate_limited_per_user_but_reads_are_not(world, login, monkeypatch):
    monkeypatch.setattr(JudgmentRateThrottle, "THROTTLE_RATES", {"judgments": "2/min"})
    client = login(world.expert)
    statuses = [
        client.put(_url(world.mine), {"choice": c}, format="json").status_code
        for c in ("a", "b", "tie")
    ]
    assert statuses == [201, 200, 429]
    assert Judgment.objects.get(assignment=world.mine).choice == "b"
    for _ in range(3):
        assert client.get(_url(world.mine)).status_code == 200


def test_session_writes_need_the_csrf_token_but_token_writes_do_not(world):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(world.expert)
    assert browser.put(_url(world.mine), {"choice": "a"}, format="json").status_code == 403
    assert not Judgment.objects.filter(assignment=world.mine).exists()

    script = APIClient(enforce_csrf_checks=True)
    script.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=world.expert).key}")
    assert script.put(_url(world.mine), {"choice": "a"}, format="json").status_code == 201


def test_a_form_encoded_submit_is_refused_with_415_and_stores_nothing(world, login):
    """The API reads JSON bodies only, as its schema says (a generated client sent a mix)."""
    body = {"choice": "b", "criterion_scores": '{"correctness": {"b": 4}}', "flagged": "false"}
    response = login(world.expert).put(_url(world.mine), body, format="multipart")
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["detail"]
    assert not Judgment.objects.filter(assignment=world.mine).exists()


def test_a_skip_is_stored_flagged_with_its_reason_and_read_back(world, login):
    client = login(world.expert)
    response = client.put(
        _url(world.mine), {"choice": "skip", "flag_reason": "prompt cut off"}, format="json"
    )
    assert response.status_code == 201, response.content
    data = client.get(_url(world.mine)).json()
    assert (data["choice"], data["flagged"], data["flag_reason"]) == (
        "skip",
        True,
        "prompt cut off",
    )
    pending = client.get("/api/assignments/", {"pending": "true"}).json()
    assert world.mine.token not in str(pending)  # a skipped item is done


def test_a_better_answer_is_stored_returned_and_replaced_with_the_judgment(world, login):
    client = login(world.expert)
    sent = client.put(
        _url(world.mine), {"choice": "b", "correction": " Rest and fluids.\n"}, format="json"
    )
    assert sent.status_code == 201 and sent.json()["correction"] == "Rest and fluids."
    assert Judgment.objects.get(assignment=world.mine).correction == "Rest and fluids."
    assert client.get(_url(world.mine)).json()["correction"] == "Rest and fluids."
    detail = client.get(f"/api/assignments/{world.mine.token}/").json()
    assert detail["judgment"]["correction"] == "Rest and fluids."
    # A PUT replaces the whole judgment: one without a correction removes it.
    replaced = client.put(_url(world.mine), {"choice": "b"}, format="json")
    assert replaced.status_code == 200 and replaced.json()["correction"] == ""
    assert Judgment.objects.get(assignment=world.mine).revisions == 1


def test_a_nul_in_a_better_answer_is_a_400_that_stores_nothing(world, login):
    body = {"choice": "a", "correction": "Rest\u0000"}
    response = login(world.expert).put(_url(world.mine), body, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == NUL_MESSAGE
    assert not Judgment.objects.filter(assignment=world.mine).exists()


def test_managers_read_every_raters_better_answer_with_the_judgment(world, login):
    data = login(world.manager).get(f"/api/judgments/{world.judgment.pk}/").json()
    assert data["correction"] == "other rater's private answer"
    assert data["rater"] == world.other_expert.username
