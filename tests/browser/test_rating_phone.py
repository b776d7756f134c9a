"""On a phone the choices and their submit button stick to the bottom of the screen, and the
answers can still be read to their last line; on a laptop the page is as it was."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from evalhub.models import Judgment
from tests.browser.test_rating import current_token, log_in
from tests.evalhub.rating_fixtures import open_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"is_mobile": True, "has_touch": True, "device_scale_factor": 2}
SENTENCE = "Keep the dressing dry for two days and change it if it gets wet. "


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    cache.clear()


@pytest.fixture
def long_answers():
    """A study whose answers run over several phone screens, with criteria and guidelines."""
    study, (rater, _), outputs = open_study(
        prompts=2, criteria=["correctness"], guidelines="Prefer the safer answer."
    )
    for system in outputs.systems:
        system.outputs.update(text=SENTENCE * 25 + "THE LAST LINE.")
    return study, rater


def open_item(page, live_server, study, rater) -> None:
    log_in(page, live_server, rater)
    page.goto(live_server.url + reverse("rate_next", args=[study.pk]))
    page.wait_for_selector("#rate-item")


def test_on_a_phone_the_choices_are_on_screen_at_the_top_of_the_page(
    live_server, new_page, long_answers, artifacts
):
    study, rater = long_answers
    page = new_page(390, 844, **PHONE)
    open_item(page, live_server, study, rater)
    assert page.evaluate("window.scrollY") == 0
    assert page.evaluate("document.documentElement.scrollHeight") > 3 * 844
    controls = page.locator(".rate-bar .rate-option, .rate-bar-submit").all()
    assert len(controls) == 5
    for control in controls:
        box = control.bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= 844, box
    assert page.locator(".rate-bar").bounding_box()["height"] < 844 / 5  # not a wall
    page.screenshot(path=str(artifacts / "rating-phone-top.png"))

    token = current_token(page)
    page.click(".rate-bar .rate-option:has-text('B is better')")
    page.click(".rate-bar-submit")
    page.wait_for_function("t => !location.pathname.includes(t)", arg=token)
    assert Judgment.objects.get().choice == "b"


def test_on_a_phone_the_last_line_of_response_b_scrolls_into_view_above_the_bar(
    live_server, new_page, long_answers, artifacts
):
    study, rater = long_answers
    page = new_page(390, 844, **PHONE)
    open_item(page, live_server, study, rater)
    page.evaluate(
        "document.querySelectorAll('.rate-response .text-output')[1].scrollIntoView({block: 'end'})"
    )
    last_line = page.evaluate(
        """() => {
          const text = document.querySelectorAll('.rate-response .text-output')[1].firstChild;
          const range = document.createRange();
          range.setStart(text, text.length - 3);
          range.setEnd(text, text.length);
          const r = range.getBoundingClientRect();
          const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
          return {top: r.top, bottom: r.bottom, bar: document.querySelector('.rate-bar')
                  .getBoundingClientRect().top, inB: hit.closest('.rate-response') ===
                  document.querySelectorAll('.rate-response')[1]};
        }"""
    )
    assert last_line["top"] >= 0 and last_line["bottom"] <= last_line["bar"], last_line
    assert last_line["inB"], "something covers the last line of response B"
    page.screenshot(path=str(artifacts / "rating-phone-end-of-b.png"))


def test_on_a_laptop_the_choices_stay_in_the_page_with_one_submit_button(
    live_server, new_page, long_answers, artifacts
):
    study, rater = long_answers
    page = new_page(1366, 768)
    open_item(page, live_server, study, rater)
    assert page.evaluate("getComputedStyle(document.querySelector('.rate-bar')).position") == (
        "static"
    )
    assert not page.locator(".rate-bar-submit").is_visible()
    assert page.locator(".rate-submit button").is_visible()
    assert page.evaluate("document.documentElement.style.scrollPaddingBottom") == ""
    page.screenshot(path=str(artifacts / "rating-laptop.png"), full_page=True)
