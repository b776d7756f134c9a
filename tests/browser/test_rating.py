"""An expert rates in a real browser: keyboard, htmx swaps, revisions, reloads, no JavaScript."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from evalhub.models import Judgment
from evalhub.services.gold import GoldItem
from evalhub.services.judgments import ERROR_CHOICE
from tests.evalhub.rating_fixtures import MODEL_NAME, open_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NASTY = (
    '<script>document.title="pwned"</script><b>not bold</b> '
    + "https://example.com/" + "a" * 400 + "\n\n"
    + "A second paragraph with an ordinary sentence that wraps normally across the column."
)  # fmt: skip
GUIDELINES = "Prefer the answer a domain expert would sign.\n- Correctness first\n- Then tone"


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    cache.clear()


@pytest.fixture
def study_for_browser():
    gold = [GoldItem(prompt="What is 2 + 2?", better="4", worse="5", reference="4")]
    study, (rater, _), outputs = open_study(
        prompts=4,
        criteria=["correctness", "tone"],
        guidelines=GUIDELINES,
        show_reference=True,
        gold=gold,
        name="Support replies",
    )
    outputs.base.outputs.filter(prompt=outputs.prompts[0]).update(text=NASTY)
    identities = [
        outputs.base.name,
        outputs.adapter.name,
        outputs.run.name,
        MODEL_NAME,
        "adapter",
    ]
    return study, rater, identities


def log_in(page, live_server, user) -> None:
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "pw")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def current_token(page) -> str:
    return page.url.rstrip("/").rsplit("/", 1)[-1]


def submit_with_keyboard(page, key: str) -> str:
    """Choose with key 1–4, press Enter, wait for the next item; returns the judged token."""
    token = current_token(page)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press(key)
    checked = page.locator('input[name="choice"]:checked')
    assert checked.count() == 1
    page.keyboard.press("Enter")
    page.wait_for_function("t => !location.pathname.includes(t)", arg=token)
    return token


def assert_no_identity(page, identities) -> None:
    dom = page.evaluate("document.documentElement.outerHTML").lower()
    for identity in identities:
        assert identity.lower() not in dom, identity


def test_an_expert_rates_with_the_keyboard_revises_and_reloads(
    live_server, new_page, study_for_browser
):
    study, rater, identities = study_for_browser
    page = new_page()
    log_in(page, live_server, rater)
    page.click(f"a[href='{reverse('rate_next', args=[study.pk])}']")
    page.wait_for_selector("#rate-item")
    assert page.locator("text=1 of 5").count() == 1
    page.evaluate("window.sameDocument = true")  # survives htmx swaps, not reloads

    expected = {}
    expected[submit_with_keyboard(page, "1")] = "a"
    assert page.evaluate("window.sameDocument === true")  # swapped in, not reloaded
    assert page.locator("text=2 of 5").count() == 1

    page.select_option("select[name='score-0-a']", "2")
    page.select_option("select[name='score-0-b']", "5")
    page.fill("textarea[name=comment]", "B names the right form.")
    scored = submit_with_keyboard(page, "2")
    expected[scored] = "b"

    page.check("input[name=flagged]")
    page.fill("input[name=flag_reason]", "prompt is cut off")
    expected[submit_with_keyboard(page, "4")] = "both_bad"
    assert page.evaluate("window.sameDocument === true")
    assert_no_identity(page, identities)

    # Back to the first judgment through the rater's own list, and revise it.
    page.click("text=Your judgments")
    page.wait_for_selector(".rate-history")
    first = next(iter(expected))
    page.click(f"a[href='/rate/{first}/']")
    assert page.locator('input[name="choice"][value="a"]').is_checked()
    assert page.locator("#rate-form .rate-submit button").inner_text() == "Save revision"
    submit_with_keyboard(page, "3")
    expected[first] = "tie"

    # The pushed URL survives a reload: the same unjudged item comes back.
    unjudged = current_token(page)
    assert unjudged not in expected
    page.reload()
    page.wait_for_selector("#rate-item")
    assert current_token(page) == unjudged
    assert page.locator('input[name="choice"]:checked').count() == 0
    assert_no_identity(page, identities)

    judgments = {j.assignment.token: j for j in Judgment.objects.select_related("assignment").all()}
    assert {token: j.choice for token, j in judgments.items()} == expected
    assert judgments[first].revisions == 1
    assert judgments[scored].criterion_scores == {"correctness": {"a": 2, "b": 5}}
    assert judgments[scored].comment == "B names the right form."
    flagged = [j for j in judgments.values() if j.flagged]
    assert [j.flag_reason for j in flagged] == ["prompt is cut off"]
    assert all(j.time_on_task_ms is not None and j.time_on_task_ms > 0 for j in judgments.values())
    assert {j.assignment.rater_id for j in judgments.values()} == {rater.pk}


def test_without_javascript_the_form_posts_and_redirects(live_server, new_page, study_for_browser):
    study, rater, _ = study_for_browser
    page = new_page(java_script_enabled=False)
    log_in(page, live_server, rater)
    page.goto(live_server.url + reverse("rate_next", args=[study.pk]))
    token = current_token(page)
    page.check('input[name="choice"][value="tie"]')
    page.click("#rate-form .rate-submit button")
    page.wait_for_url(lambda url: token not in url)
    assert "/rate/" in page.url
    judgment = Judgment.objects.get()
    assert (judgment.assignment.token, judgment.choice) == (token, "tie")
    assert judgment.time_on_task_ms is None  # nobody measured it


def test_model_markup_stays_text_and_the_page_fits_desktop_and_phone(
    live_server, new_page, study_for_browser, artifacts
):
    study, rater, identities = study_for_browser
    shots = {}
    for label, size, options in (
        ("desktop", (1280, 800), {}),
        ("phone", (390, 844), {"is_mobile": True, "has_touch": True, "device_scale_factor": 2}),
    ):
        page = new_page(*size, **options)
        log_in(page, live_server, rater)
        page.goto(live_server.url + reverse("rate_next", args=[study.pk]))
        # Show the item with the hostile output, whichever place it has in this rater's queue.
        while "not bold" not in page.content():
            submit_with_keyboard(page, "3")
        assert page.title() != "pwned"
        assert page.locator(".rate-response b").count() == 0
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= size[0], f"{label}: the page scrolls sideways ({width}px)"
        if label == "phone":
            boxes = [r.bounding_box() for r in page.locator(".rate-response").all()]
            assert boxes[1]["y"] >= boxes[0]["y"] + boxes[0]["height"]  # stacked
        assert_no_identity(page, identities)
        shots[label] = artifacts / f"rating-{label}.png"
        page.screenshot(path=str(shots[label]), full_page=True)
        Judgment.objects.all().delete()
    assert all(path.stat().st_size > 10_000 for path in shots.values())


def test_a_refused_submit_swaps_in_its_message_without_a_reload(
    live_server, new_page, study_for_browser
):
    # htmx 2 swaps only 2xx by default; the page's responseHandling lets 422 and 429 swap.
    study, rater, _ = study_for_browser
    page = new_page()
    log_in(page, live_server, rater)
    page.goto(live_server.url + reverse("rate_next", args=[study.pk]))
    page.wait_for_selector("#rate-item")
    token = current_token(page)
    page.evaluate("window.sameDocument = true")
    # A stale or scripted form can arrive without a choice; the browser's own check is off here.
    page.evaluate(
        "document.querySelectorAll('input[name=choice]').forEach(i => i.required = false)"
    )
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click("#rate-form .rate-submit button")
    assert answer.value.status == 422
    page.wait_for_selector(f"text={ERROR_CHOICE}")
    assert page.evaluate("window.sameDocument === true")
    assert current_token(page) == token
    assert not Judgment.objects.exists()
