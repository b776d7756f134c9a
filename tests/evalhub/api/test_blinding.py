"""An expert's API is as blind as their rating page: no system, run or model names, no output or
comparison ids, no gold flag, nothing of other raters."""

import json

import pytest

from tests.evalhub.api.conftest import SECRET_NAMES

ASSIGNMENT_KEYS = {
    "token",
    "position",
    "study",
    "prompt",
    "messages",
    "reference",
    "responses",
    "judgment",
}
STUDY_KEYS = {"id", "name", "status", "criteria", "guidelines", "show_reference"}


def _assert_blind(text: str, world) -> None:
    for name in SECRET_NAMES:
        assert name not in text
    assert "gold" not in text.lower()
    assert "other rater's private comment" not in text
    assert "other rater's private answer" not in text
    assert world.other_expert.username not in text
    assert world.theirs.token not in text


def _assert_blind_shape(item: dict) -> None:
    assert set(item) == ASSIGNMENT_KEYS
    assert set(item["study"]) == STUDY_KEYS
    assert set(item["responses"]) == {"a", "b"}


def test_assignment_list_shows_only_own_assignments_blinded(world, login):
    response = login(world.expert).get("/api/assignments/")
    assert response.status_code == 200
    _assert_blind(response.content.decode(), world)
    items = response.json()["results"]
    assert {item["token"] for item in items} == {world.mine.token, world.mine_gold.token}
    for item in items:
        _assert_blind_shape(item)


@pytest.mark.parametrize("which", ["mine", "mine_gold"])
def test_assignment_detail_is_blinded(world, login, which):
    assignment = getattr(world, which)
    response = login(world.expert).get(f"/api/assignments/{assignment.token}/")
    assert response.status_code == 200
    _assert_blind(response.content.decode(), world)
    _assert_blind_shape(response.json())


def test_response_a_is_the_left_output_as_displayed_to_this_rater(world, login):
    # The expert's assignment shows the adapter's output (stored as output_b) on the left.
    data = login(world.expert).get(f"/api/assignments/{world.mine.token}/").json()
    assert data["responses"] == {
        "a": world.comparison.output_b.text,
        "b": world.comparison.output_a.text,
    }
    # The other expert sees the same comparison the other way round.
    data = login(world.other_expert).get(f"/api/assignments/{world.theirs.token}/").json()
    assert data["responses"]["a"] == world.comparison.output_a.text


def test_assignment_carries_prompt_guidelines_criteria_and_reference(world, login):
    data = login(world.expert).get(f"/api/assignments/{world.mine.token}/").json()
    prompt = world.comparison.prompt
    assert data["prompt"] == prompt.text
    assert data["messages"] == prompt.messages
    assert data["reference"] == prompt.reference
    assert data["study"]["criteria"] == ["correctness", "style"]
    assert data["study"]["guidelines"] == "Prefer the answer a nurse would give."
    assert data["judgment"] is None


def test_reference_is_withheld_when_the_study_does_not_show_it(world, login):
    world.study.show_reference = False
    world.study.save()
    data = login(world.expert).get(f"/api/assignments/{world.mine.token}/").json()
    assert data["reference"] is None
    assert world.comparison.prompt.reference not in json.dumps(data)


def test_rater_sees_own_judgment_but_not_others(world, login):
    data = login(world.other_expert).get(f"/api/assignments/{world.theirs.token}/").json()
    assert data["judgment"]["choice"] == "b"
    assert data["judgment"]["comment"] == "other rater's private comment"
    assert data["judgment"]["correction"] == "other rater's private answer"
    mine = login(world.expert).get(f"/api/assignments/{world.mine.token}/").json()
    assert mine["judgment"] is None


def test_browsable_api_html_for_an_expert_is_blinded_too(world, login):
    client = login(world.expert)
    paths = (
        "/api/assignments/",
        f"/api/assignments/{world.mine.token}/",
        f"/api/assignments/{world.mine.token}/judgment/",
    )
    for path in paths:
        response = client.get(path, HTTP_ACCEPT="text/html")
        assert response["Content-Type"].startswith("text/html")
        _assert_blind(response.content.decode(), world)


@pytest.mark.parametrize("status", ["draft", "closed"])
def test_assignments_outside_open_or_paused_studies_are_not_shown(world, login, status):
    # The same scope as the rating page: a draft is not started, a closed study is over.
    world.study.status = status
    world.study.save()
    client = login(world.expert)
    assert client.get("/api/assignments/").json()["results"] == []
    assert client.get(f"/api/assignments/{world.mine.token}/").status_code == 404


def test_pending_filter_splits_judged_from_unjudged(world, login):
    client = login(world.other_expert)
    judged = client.get("/api/assignments/?pending=false").json()["results"]
    pending = client.get("/api/assignments/?pending=true").json()["results"]
    assert [a["token"] for a in judged] == [world.theirs.token]
    assert pending == []
