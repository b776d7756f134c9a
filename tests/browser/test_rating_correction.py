"""The better answer in a real browser: reached and opened by keyboard, typed into without
choosing a side or submitting, stored with the judgment, shown again when revising; and the
same without JavaScript."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from evalhub.models import Judgment
from tests.browser.test_rating import current_token, log_in
from tests.evalhub.rating_fixtures import open_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Keys 1–4 choose a side and Enter submits elsewhere on the page; here they are text.
TYPED = "1 cup of rice, 2 of water"
AFTER_ENTER = "3 or 4 minutes of rest"


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    cache.clear()


def correction_open(page) -> bool:
    return page.locator(".rate-correction").get_attribute("open") is not None


def focused(page) -> str:
    """The focused element's tag, then its name, or its parent's class where it has none."""
    return page.evaluate(
        "() => document.activeElement.tagName + '.' + (document.activeElement.name || "
        "document.activeElement.parentElement.className)"
    )


def test_the_fold_opens_by_keyboard_and_typing_in_it_chooses_nothing(live_server, new_page):
    study, (rater, _), _ = open_study(prompts=3)
    page = new_page()
    log_in(page, live_server, rater)
    page.goto(live_server.url + reverse("rate_next", args=[study.pk]))
    page.wait_for_selector("#rate-item")
    token = current_token(page)
    assert not correction_open(page)

    page.focus('textarea[name="comment"]')
    page.keyboard.press("Shift+Tab")  # the fold comes right before the comment
    assert focused(page) == "SUMMARY.rate-correction"
    page.keyboard.press("Enter")
    assert correction_open(page)
    page.keyboard.press("Tab")
    assert focused(page) == "TEXTAREA.correction"
    page.keyboard.type(TYPED)
    page.keyboard.press("Enter")  # a new line, not a submit
    page.keyboard.type(AFTER_ENTER)

    assert page.locator('input[name="choice"]:checked').count() == 0
    assert current_token(page) == token and not Judgment.objects.exists()
    assert page.input_value('textarea[name="correction"]') == f"{TYPED}\n{AFTER_ENTER}"

    page.check('input[name="choice"][value="b"]')
    page.click(".rate-submit button[type=submit]")
    page.wait_for_function("t => !location.pathname.includes(t)", arg=token)
    judgment = Judgment.objects.get()
    assert (judgment.choice, judgment.correction) == ("b", f"{TYPED}\n{AFTER_ENTER}")

    page.goto(live_server.url + reverse("rate_item", args=[token]))
    assert correction_open(page)
    assert page.input_value('textarea[name="correction"]') == f"{TYPED}\n{AFTER_ENTER}"


def test_without_javascript_the_fold_opens_and_the_answer_is_stored(live_server, new_page):
    study, (rater, _), _ = open_study(prompts=2)
    page = new_page(java_script_enabled=False)
    log_in(page, live_server, rater)
    page.goto(live_server.url + reverse("rate_next", args=[study.pk]))
    token = current_token(page)
    page.click(".rate-correction summary")
    assert correction_open(page)
    page.fill('textarea[name="correction"]', "Boil, then rest.")
    page.check('input[name="choice"][value="a"]')
    page.click(".rate-submit button[type=submit]")
    page.wait_for_url(lambda url: token not in url)
    assert Judgment.objects.get().correction == "Boil, then rest."


def test_a_too_long_answer_comes_back_open_with_its_message_and_the_caret(live_server, new_page):
    study, (rater, _), _ = open_study(prompts=2)
    page = new_page()
    log_in(page, live_server, rater)
    page.goto(live_server.url + reverse("rate_next", args=[study.pk]))
    page.wait_for_selector("#rate-item")
    token = current_token(page)
    page.click(".rate-correction summary")
    page.fill('textarea[name="correction"]', "x" * 10_001)
    page.check('input[name="choice"][value="a"]')
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click(".rate-submit button[type=submit]")
    assert answer.value.status == 422
    message = "A better answer is limited to 10,000 characters; yours has 10,001."
    page.wait_for_selector(f"#correction-error:has-text('{message}')")
    assert correction_open(page) and current_token(page) == token
    page.wait_for_function("() => document.activeElement.name === 'correction'")
    assert len(page.input_value('textarea[name="correction"]')) == 10_001
    assert not Judgment.objects.exists()
