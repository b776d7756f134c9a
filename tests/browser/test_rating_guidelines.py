"""The guidelines, written in Markdown, are open on the rater's first item and whenever they
changed since this browser last showed them; folded on every other item."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from evalhub.models import Study
from tests.browser.test_rating import current_token, log_in
from tests.evalhub.rating_fixtures import open_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MARKDOWN = "Prefer the answer a **domain expert** would sign.\n\n- Correctness first\n- Then tone"


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    cache.clear()


def guidelines_open(page) -> bool:
    return page.locator(".rate-guidelines").get_attribute("open") is not None


def judge_with_keyboard(page, key: str = "3") -> None:
    token = current_token(page)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press(key)
    page.keyboard.press("Enter")
    page.wait_for_function("t => !location.pathname.includes(t)", arg=token)


def test_open_on_the_first_item_rendered_from_markdown_then_folded(live_server, new_page):
    study, (rater, _), _ = open_study(prompts=3, guidelines=MARKDOWN)
    page = new_page()
    log_in(page, live_server, rater)
    page.goto(live_server.url + reverse("rate_next", args=[study.pk]))
    page.wait_for_selector("#rate-item")
    assert guidelines_open(page)
    assert page.locator(".rate-guidelines strong").inner_text() == "domain expert"
    assert page.locator(".rate-guidelines li").all_inner_texts() == [
        "Correctness first",
        "Then tone",
    ]

    judge_with_keyboard(page)  # the next item comes by htmx
    assert not guidelines_open(page)
    page.reload()
    page.wait_for_selector("#rate-item")
    assert not guidelines_open(page)


def test_changed_guidelines_open_once_on_the_next_item(live_server, new_page):
    study, (rater, _), _ = open_study(prompts=4, guidelines=MARKDOWN)
    page = new_page()
    log_in(page, live_server, rater)
    page.goto(live_server.url + reverse("rate_next", args=[study.pk]))
    page.wait_for_selector("#rate-item")
    judge_with_keyboard(page)
    assert not guidelines_open(page)

    Study.objects.filter(pk=study.pk).update(guidelines=MARKDOWN + "\n- Never guess a dose")
    judge_with_keyboard(page)
    assert guidelines_open(page)
    assert "Never guess a dose" in page.locator(".rate-guidelines").inner_text()
    judge_with_keyboard(page)
    assert not guidelines_open(page)


def test_a_browser_that_never_showed_them_opens_them(live_server, new_page):
    # Another browser (a new laptop, a cleared cache) does not know what the rater saw.
    study, (rater, _), _ = open_study(prompts=3, guidelines=MARKDOWN)
    first = new_page()
    log_in(first, live_server, rater)
    first.goto(live_server.url + reverse("rate_next", args=[study.pk]))
    first.wait_for_selector("#rate-item")
    judge_with_keyboard(first)
    assert not guidelines_open(first)

    second = new_page()
    log_in(second, live_server, rater)
    second.goto(live_server.url + reverse("rate_next", args=[study.pk]))
    second.wait_for_selector("#rate-item")
    assert guidelines_open(second)
