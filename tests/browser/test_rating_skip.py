"""Flag and skip, by mouse and by keyboard: the reason is required, the next item follows."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from evalhub.models import Choice, Judgment
from evalhub.services.judgments import ERROR_SKIP_REASON
from tests.browser.test_rating import current_token, log_in
from tests.evalhub.rating_fixtures import open_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    cache.clear()


@pytest.fixture
def rating_page(live_server, new_page):
    study, (rater, _), _ = open_study(prompts=3)
    page = new_page()
    log_in(page, live_server, rater)
    page.goto(live_server.url + reverse("rate_next", args=[study.pk]))
    page.wait_for_selector("#rate-item")
    page.evaluate("window.sameDocument = true")
    return page


def assert_on_screen(page, selector: str) -> None:
    """Waits (3 s at most) for the element to lie wholly within the viewport."""
    page.wait_for_function(
        """s => { const r = document.querySelector(s).getBoundingClientRect();
                  return r.top >= 0 && r.bottom <= window.innerHeight; }""",
        arg=selector,
        timeout=3000,
    )


def refuse(page, act) -> None:
    """Does act, which the server refuses with 422, and returns once htmx has set the refused
    item up (its settle) and rate.js has put the caret in the refused field."""
    page.evaluate(
        "() => { window.settled = new Promise(done =>"
        " document.addEventListener('htmx:afterSettle', done, {once: true})); }"
    )
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        act()
    assert answer.value.status == 422
    page.evaluate("window.settled.then(() => new Promise(done => setTimeout(done, 0)))")


def test_a_rater_flags_and_skips_with_the_mouse(rating_page):
    page = rating_page
    token = current_token(page)
    page.fill("input[name=flag_reason]", "the prompt is cut off")
    page.click("text=Flag and skip")
    page.wait_for_function("t => !location.pathname.includes(t)", arg=token)
    assert page.evaluate("window.sameDocument === true")  # swapped in by htmx
    assert page.locator("text=1 judged").count() == 1
    judgment = Judgment.objects.get()
    assert (judgment.assignment.token, judgment.choice, judgment.flagged) == (
        token,
        Choice.SKIP,
        True,
    )
    assert judgment.flag_reason == "the prompt is cut off"


def test_a_rater_flags_and_skips_with_the_keyboard_and_is_asked_for_the_reason(rating_page):
    page = rating_page
    token = current_token(page)
    page.focus("textarea[name=comment]")
    page.keyboard.press("Tab")  # the flag's checkbox
    page.keyboard.press("Tab")  # its reason
    page.keyboard.press("Tab")  # Flag and skip
    assert page.evaluate("document.activeElement.textContent") == "Flag and skip"
    refuse(page, lambda: page.keyboard.press("Enter"))
    page.wait_for_selector(f"text={ERROR_SKIP_REASON}")
    assert current_token(page) == token and not Judgment.objects.exists()
    # The refusal puts the caret in the reason, on screen with its message: type it, Tab to
    # the button, Enter.
    assert page.evaluate("document.activeElement.name") == "flag_reason"
    assert page.locator("#flag-reason-error").inner_text() == ERROR_SKIP_REASON
    assert_on_screen(page, "input[name=flag_reason]")
    page.keyboard.type("two identical answers")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_function("t => !location.pathname.includes(t)", arg=token)
    assert page.evaluate("window.sameDocument === true")
    judgment = Judgment.objects.get()
    assert (judgment.choice, judgment.flag_reason) == (Choice.SKIP, "two identical answers")


def test_enter_in_the_flag_reason_submits_the_chosen_side_flagged(rating_page):
    # Implicit submission goes through the form's first submit button, the phone bar's one,
    # hidden on a laptop: it must still submit, and never as a skip.
    page = rating_page
    token = current_token(page)
    page.keyboard.press("2")
    page.check("input[name=flagged]")
    page.fill("input[name=flag_reason]", "B cites a withdrawn guideline")
    page.press("input[name=flag_reason]", "Enter")
    page.wait_for_function("t => !location.pathname.includes(t)", arg=token)
    judgment = Judgment.objects.get()
    assert (judgment.choice, judgment.flagged) == ("b", True)
    # The next item's keys choose again: the caret did not follow into its reason field.
    page.keyboard.press("1")
    assert page.locator('input[name="choice"]:checked').get_attribute("value") == "a"
    assert page.input_value("input[name=flag_reason]") == ""


def test_on_a_phone_a_refused_skip_brings_the_reason_into_view(live_server, new_page):
    study, (rater, _), _ = open_study(prompts=2, criteria=["correctness"])
    page = new_page(390, 844, is_mobile=True, has_touch=True, device_scale_factor=2)
    log_in(page, live_server, rater)
    page.goto(live_server.url + reverse("rate_next", args=[study.pk]))
    page.wait_for_selector("#rate-item")
    refuse(page, lambda: page.click("text=Flag and skip"))
    page.wait_for_selector("#flag-reason-error")
    assert page.evaluate("document.activeElement.name") == "flag_reason"
    assert_on_screen(page, "#flag-reason-error")
    reason = page.locator("input[name=flag_reason]").bounding_box()
    assert reason["y"] + reason["height"] <= page.locator(".rate-bar").bounding_box()["y"]


def test_a_submit_the_moment_the_refused_item_appears_is_still_htmxs(rating_page):
    # The browser focuses the swapped-in reason at once; a key pressed the next moment must
    # reach htmx's handler, not the browser's own post and a full reload.
    page = rating_page
    token = current_token(page)
    page.evaluate(
        """() => document.addEventListener("focusin", function answer(event) {
             const reason = event.target;
             if (reason.name !== "flag_reason") return;
             document.removeEventListener("focusin", answer);
             setTimeout(() => {
               reason.value = "answered on focus";
               reason.form.querySelector("[name=skip]").click();
             }, 0);
           })"""
    )
    page.click("text=Flag and skip")
    page.wait_for_function("t => !location.pathname.includes(t)", arg=token)
    assert page.evaluate("window.sameDocument === true")
    assert Judgment.objects.get().flag_reason == "answered on focus"
