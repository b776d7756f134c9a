"""The study page's "Verdict details" card in a real browser: at a laptop's width and a
phone's, its table stays inside the card (nothing cut off or scrolling sideways)."""

import pytest
from django.conf import settings
from django.test import Client

from tests.evalhub.test_rater_gate import gated  # noqa: F401  (a fixture)
from tests.factories import ManagerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1366, 390])
def test_the_card_fits_the_page(gated, live_server, new_page, artifacts, width):  # noqa: F811
    client = Client()
    client.force_login(ManagerFactory())
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    page = new_page(width=width, height=900)
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
    )
    page.goto(f"{live_server.url}/studies/{gated.pk}/")
    card = page.locator("#verdict-details")
    card.scroll_into_view_if_needed()
    card.screenshot(path=str(artifacts / f"verdict-details-{width}.png"))
    page.screenshot(path=str(artifacts / f"study-page-{width}.png"), full_page=True)
    fits = card.evaluate(
        "c => [...c.querySelectorAll('table')].every(t => t.scrollWidth <= c.clientWidth)"
    )
    assert fits
    box = card.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width


def test_the_managers_study_page_does_not_scroll_sideways_on_a_phone(
    gated,  # noqa: F811
    live_server,
    new_page,
):
    """The manager's navigation and the raters' tables once pushed the page to 457 px at 390."""
    client = Client()
    client.force_login(ManagerFactory())
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    page = new_page(width=390, height=900)
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
    )
    page.goto(f"{live_server.url}/studies/{gated.pk}/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    raters = page.locator("table.study-raters")
    assert raters.evaluate("t => t.scrollWidth > t.clientWidth")  # it scrolls in place
