"""The rating keys keep working after the rater folds or opens the guidelines."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from evalhub.models import Judgment
from tests.browser.test_rating import GUIDELINES, current_token, log_in
from tests.evalhub.rating_fixtures import open_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    cache.clear()


def guidelines_open(page) -> bool:
    return page.locator(".rate-guidelines").get_attribute("open") is not None


def test_keys_choose_and_enter_submits_after_the_guidelines_are_folded_and_opened(
    live_server, new_page
):
    study, (rater, _), _ = open_study(prompts=3, guidelines=GUIDELINES)
    page = new_page()
    log_in(page, live_server, rater)
    page.goto(live_server.url + reverse("rate_next", args=[study.pk]))
    page.wait_for_selector("#rate-item")
    token = current_token(page)
    assert guidelines_open(page)  # the rater's first item

    page.click(".rate-guidelines summary")
    assert not guidelines_open(page)
    page.keyboard.press("1")
    assert page.locator('input[name="choice"][value="a"]').is_checked()
    page.click(".rate-guidelines summary")
    assert guidelines_open(page)
    page.keyboard.press("2")
    assert page.locator('input[name="choice"][value="b"]').is_checked()
    page.keyboard.press("Enter")
    page.wait_for_function("t => !location.pathname.includes(t)", arg=token)
    assert Judgment.objects.get().choice == "b"


def test_enter_on_a_summary_reached_by_keyboard_still_folds_it(live_server, new_page):
    study, (rater, _), _ = open_study(prompts=3, guidelines=GUIDELINES)
    page = new_page()
    log_in(page, live_server, rater)
    page.goto(live_server.url + reverse("rate_next", args=[study.pk]))
    page.wait_for_selector("#rate-item")
    page.focus(".rate-guidelines summary")
    page.keyboard.press("Enter")
    assert not guidelines_open(page)
    page.keyboard.press("Enter")
    assert guidelines_open(page)
    page.keyboard.press("1")
    assert page.locator('input[name="choice"][value="a"]').is_checked()
    assert not Judgment.objects.exists()
