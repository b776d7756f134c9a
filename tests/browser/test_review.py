"""A reviewer settles the queue in a browser: keys 1–4 choose the final call and Enter saves it,
a click works too, and the page reads in one A/B frame."""

import pytest
from django.urls import reverse

from evalhub.models import Adjudication
from evalhub.selectors.review import disputed_comparisons
from tests.browser.test_rating import log_in
from tests.evalhub.review_fixtures import disputed_study
from tests.factories import ReviewerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_reviewer_makes_final_calls_by_keyboard_and_by_mouse(live_server, new_page, artifacts):
    world = disputed_study()
    reviewer = ReviewerFactory()
    queue = disputed_comparisons(study=world.study, reviewer=reviewer)
    page = new_page()
    log_in(page, live_server, reviewer)
    assert page.url.endswith(reverse("review_home"))
    page.click("text=Start")
    page.wait_for_selector("#review-item")
    assert page.url.endswith(queue[0].token + "/")
    page.screenshot(path=str(artifacts / "review-item.png"), full_page=True)
    assert page.locator(".review-judgments tbody tr").count() == 2

    page.keyboard.press("3")
    assert page.locator('input[name="choice"][value="tie"]').is_checked()
    page.keyboard.press("1")
    assert page.locator('input[name="choice"][value="a"]').is_checked()
    page.fill("textarea[name=note]", "A answers the question asked")
    page.locator("body").click(position={"x": 5, "y": 5})  # leave the note: keys are the page's
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: queue[1].token in url)
    first = Adjudication.objects.get(comparison_id=queue[0].comparison)
    assert first.verdict == ("a" if queue[0].left_is_a else "b")
    assert first.note == "A answers the question asked"

    page.click("label.rate-option:has-text('Both bad')")
    page.click("button:has-text('Save final call')")
    page.wait_for_url(lambda url: url.endswith(reverse("review_study", args=[world.study.pk])))
    assert Adjudication.objects.get(comparison_id=queue[1].comparison).verdict == "both_bad"
    page.screenshot(path=str(artifacts / "review-queue.png"), full_page=True)
    assert page.locator(".review-queue tbody tr").count() == 2
    assert page.locator(".review-queue").inner_text().count("Revise") == 2
