"""The reviewer's queue and final call: what is in the queue, the one A/B frame of a page, the
final call stored in storage order beside the judgments, and bad input refused."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from evalhub.forms.rating import CHOICE_LABELS
from evalhub.models import Adjudication, Assignment, Judgment
from evalhub.roles import is_expert, is_reviewer
from evalhub.selectors.review import FLAGGED, SPLIT, disputed_comparisons, review_find
from evalhub.services.accounts import TWO_ROLES, user_create
from evalhub.services.adjudication import (
    ERROR_FINAL_CALL,
    ERROR_NOTE_LONG,
    MAX_NOTE,
    adjudication_submit,
)
from tests.evalhub.review_fixtures import disputed_study, judge, raters_opposite_to
from tests.factories import ExpertFactory, ManagerFactory, ReviewerFactory

pytestmark = pytest.mark.django_db


def test_the_queue_holds_the_split_and_the_flagged_comparisons_only():
    world = disputed_study()
    queue = disputed_comparisons(study=world.study, reviewer=ReviewerFactory())
    reasons = {d.comparison: d.reasons for d in queue}
    assert reasons == {world.split.pk: (SPLIT,), world.flagged.pk: (FLAGGED,)}


def test_raters_who_agree_from_opposite_sides_are_not_a_split():
    """Both prefer output_a, seen on the left by one and on the right by the other: their
    stored choices differ ("A" and "B") and yet they agree."""
    world = disputed_study()
    comparison = world.unjudged
    for rater, left in zip(world.raters, (comparison.output_a, comparison.output_b), strict=True):
        Assignment.objects.filter(comparison=comparison, rater=rater).update(left_output=left)
        judge(comparison, rater, "a")
    stored = Judgment.objects.filter(assignment__comparison=comparison)
    assert sorted(stored.values_list("choice", flat=True)) == ["a", "b"]
    queue = disputed_comparisons(study=world.study, reviewer=ReviewerFactory())
    assert comparison.pk not in {d.comparison for d in queue}


def test_a_reviewer_never_settles_a_comparison_they_rated():
    world = disputed_study()
    assert disputed_comparisons(study=world.study, reviewer=world.raters[0]) == []


def test_the_frame_is_the_same_on_every_visit_and_differs_between_reviewers():
    world = disputed_study()
    one, two = ReviewerFactory(), ReviewerFactory()
    first = disputed_comparisons(study=world.study, reviewer=one)
    assert first == disputed_comparisons(study=world.study, reviewer=one)
    other = disputed_comparisons(study=world.study, reviewer=two)
    assert {d.token for d in first}.isdisjoint({d.token for d in other})


def _page(client, world, reviewer, comparison):
    entry = next(
        d
        for d in disputed_comparisons(study=world.study, reviewer=reviewer)
        if d.comparison == comparison.pk
    )
    url = reverse("review_item", args=[world.study.pk, entry.token])
    return entry, url, client.get(url)


def test_every_judgment_is_shown_in_the_reviewers_frame(client):
    """The rater who preferred output_a reads "A is better" exactly when output_a is the
    reviewer's A, whatever side that rater saw it on."""
    world = disputed_study()
    reviewer = ReviewerFactory()
    raters_opposite_to(world, reviewer)
    client.force_login(reviewer)
    entry, _, response = _page(client, world, reviewer, world.split)
    assert response.status_code == 200
    rows = response.context["judgments"]
    assert [j.rater for j in rows] == ["Rater 1", "Rater 2"]
    a_better, b_better = CHOICE_LABELS["a"], CHOICE_LABELS["b"]
    expected = [a_better, b_better] if entry.left_is_a else [b_better, a_better]
    assert [j.choice for j in rows] == expected
    assert [j.comment for j in rows] == ["clearer steps", "the other one is wrong"]
    texts = [r.text for r in response.context["item"].responses]
    output_a, output_b = world.split.output_a.text, world.split.output_b.text
    assert texts == ([output_a, output_b] if entry.left_is_a else [output_b, output_a])


def test_a_flag_and_its_reason_reach_the_reviewer(client):
    world = disputed_study()
    reviewer = ReviewerFactory()
    client.force_login(reviewer)
    _, _, response = _page(client, world, reviewer, world.flagged)
    body = response.content.decode()
    assert "prompt cut off" in body and CHOICE_LABELS["skip"] in body


def test_the_final_call_is_stored_in_storage_order_beside_the_judgments(client):
    world = disputed_study()
    reviewer = ReviewerFactory()
    client.force_login(reviewer)
    before = list(Judgment.objects.order_by("id").values())
    entry, url, _ = _page(client, world, reviewer, world.split)
    response = client.post(url, {"choice": "a", "note": "  B misreads the question  "})
    assert response.status_code == 302
    call = Adjudication.objects.get()
    shown_as_a = world.split.output_a if entry.left_is_a else world.split.output_b
    assert call.left_output == shown_as_a
    assert call.verdict == ("a" if entry.left_is_a else "b")
    assert (call.reviewer, call.note, call.revisions) == (reviewer, "B misreads the question", 0)
    assert list(Judgment.objects.order_by("id").values()) == before


def test_revising_the_final_call_updates_it_in_place_and_prefills_the_form(client):
    world = disputed_study()
    reviewer = ReviewerFactory()
    client.force_login(reviewer)
    _, url, _ = _page(client, world, reviewer, world.split)
    client.post(url, {"choice": "a"})
    client.post(url, {"choice": "tie"})
    call = Adjudication.objects.get()
    assert (call.verdict, call.revisions) == ("tie", 1)
    assert client.get(url).context["form"].initial["choice"] == "tie"


def test_after_a_final_call_the_reviewer_goes_to_the_next_one_without_and_then_the_queue(client):
    world = disputed_study()
    reviewer = ReviewerFactory()
    client.force_login(reviewer)
    queue = disputed_comparisons(study=world.study, reviewer=reviewer)
    first = reverse("review_item", args=[world.study.pk, queue[0].token])
    second = reverse("review_item", args=[world.study.pk, queue[1].token])
    next_url = reverse("review_next", args=[world.study.pk])
    assert client.post(first, {"choice": "b"})["Location"] == next_url
    assert client.get(next_url)["Location"] == second
    client.post(second, {"choice": "both_bad"})
    assert client.get(next_url)["Location"] == reverse("review_study", args=[world.study.pk])


def test_a_final_call_without_a_choice_is_refused_naming_the_field(client):
    world = disputed_study()
    reviewer = ReviewerFactory()
    client.force_login(reviewer)
    _, url, _ = _page(client, world, reviewer, world.split)
    for data in ({}, {"choice": "left"}):
        response = client.post(url, data)
        assert response.status_code == 422
        assert ERROR_FINAL_CALL in response.content.decode()
    assert not Adjudication.objects.exists()


def test_a_note_too_long_is_refused_naming_the_field(client):
    world = disputed_study()
    reviewer = ReviewerFactory()
    client.force_login(reviewer)
    _, url, _ = _page(client, world, reviewer, world.split)
    response = client.post(url, {"choice": "a", "note": "x" * (MAX_NOTE + 1)})
    assert response.status_code == 422
    assert ERROR_NOTE_LONG.format(limit=MAX_NOTE) in response.content.decode()
    assert not Adjudication.objects.exists()


def test_a_token_outside_the_reviewers_queue_is_a_404(client):
    world = disputed_study()
    reviewer, other = ReviewerFactory(), ReviewerFactory()
    client.force_login(reviewer)
    theirs = disputed_comparisons(study=world.study, reviewer=other)[0].token
    mine = disputed_comparisons(study=world.study, reviewer=reviewer)
    assert review_find(queue=mine, token=theirs) is None
    for token in (theirs, "0" * 32):
        url = reverse("review_item", args=[world.study.pk, token])
        assert client.get(url).status_code == 404
        assert client.post(url, {"choice": "a"}).status_code == 404
    assert not Adjudication.objects.exists()


def test_a_settled_comparison_stays_in_the_queue_to_revise():
    world = disputed_study()
    reviewer = ReviewerFactory()
    entry = disputed_comparisons(study=world.study, reviewer=reviewer)[0]
    Adjudication.objects.create(
        comparison_id=entry.comparison,
        reviewer=reviewer,
        verdict="a",
        left_output_id=world.split.output_a_id,
    )
    Judgment.objects.filter(assignment__comparison_id=entry.comparison).update(
        choice="a", flagged=False
    )
    again = next(
        d
        for d in disputed_comparisons(study=world.study, reviewer=reviewer)
        if d.comparison == entry.comparison
    )
    assert again.decided


def test_the_review_home_counts_what_is_left_per_study(client):
    world = disputed_study()
    client.force_login(ManagerFactory())
    response = client.get(reverse("review_home"))
    (row,) = response.context["studies"]
    assert (row.name, row.total, row.decided) == (world.study.name, 2, 0)


def test_createexpert_reviewer_flag_makes_a_reviewer(capsys):
    call_command("createexpert", "rhea", "--reviewer", "--password", "long-enough-1")
    assert "created reviewer rhea" in capsys.readouterr().out
    user = user_create(username="solo", reviewer=True)[0]
    assert is_reviewer(user) and not is_expert(user) and not user.is_staff


def test_an_account_is_not_both_manager_and_reviewer():
    with pytest.raises(ValueError, match=TWO_ROLES):
        user_create(username="both", manager=True, reviewer=True)


def test_a_manager_adds_a_reviewer_from_the_people_page(client):
    client.force_login(ManagerFactory())
    response = client.post(reverse("person_create"), {"username": "rita", "role": "reviewer"})
    assert response.status_code == 200
    people = client.get(reverse("people")).content.decode()
    assert "rita" in people and ">reviewer<" in people


def test_home_sends_reviewers_to_their_queue_and_the_navigation_offers_it(client):
    client.force_login(ReviewerFactory())
    assert client.get("/")["Location"] == reverse("review_home")
    page = client.get(reverse("review_home")).content.decode()
    assert f'href="{reverse("review_home")}"' in page


def test_experts_find_no_review_link(client):
    client.force_login(ExpertFactory())
    assert (
        f'href="{reverse("review_home")}"' not in client.get(reverse("rate_home")).content.decode()
    )


def test_a_manager_may_make_the_final_call_too(client):
    world = disputed_study()
    manager = ManagerFactory()
    client.force_login(manager)
    _, url, response = _page(client, world, manager, world.flagged)
    assert response.status_code == 200
    assert client.post(url, {"choice": "both_bad"}).status_code == 302
    assert Adjudication.objects.get().reviewer == manager


@pytest.mark.parametrize(
    ("left_is_a", "verdict", "shown_as_a"), [(True, "a", "a"), (False, "b", "b")]
)
def test_a_final_call_of_a_names_the_output_the_reviewer_saw_as_a(left_is_a, verdict, shown_as_a):
    world = disputed_study()
    call = adjudication_submit(
        comparison=world.split, reviewer=ReviewerFactory(), choice="a", left_is_a=left_is_a
    )
    assert call.verdict == verdict
    assert call.left_output == getattr(world.split, f"output_{shown_as_a}")


def test_the_study_page_tells_the_manager_how_many_disagreements_are_settled(client):
    world = disputed_study()
    manager = ManagerFactory()
    client.force_login(manager)
    entry = disputed_comparisons(study=world.study, reviewer=manager)[0]
    adjudication_submit(
        comparison=world.split if entry.comparison == world.split.pk else world.flagged,
        reviewer=manager,
        choice="tie",
        left_is_a=entry.left_is_a,
    )
    body = client.get(reverse("study_detail", args=[world.study.pk])).content.decode()
    assert "2 comparisons where the raters split or one flagged the item; 1 settled" in body
    assert f'href="{reverse("review_study", args=[world.study.pk])}"' in body
