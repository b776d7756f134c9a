"""The Swagger UI docs page in a real browser: it renders every endpoint and fetches nothing
from outside the server (no CDN)."""

import pytest
from django.conf import settings
from django.test import Client

from tests.factories import ExpertFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_docs_page_renders_the_api_without_fetching_anything_external(live_server, new_page):
    client = Client()
    client.force_login(ExpertFactory())
    session = client.cookies[settings.SESSION_COOKIE_NAME].value

    page = new_page()
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
    )
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()

    assert "/api/assignments/{token}/judgment/" in [p.replace("\u200b", "") for p in paths]
    external = [
        url
        for url in requested
        if url.startswith(("http://", "https://", "//")) and not url.startswith(live_server.url)
    ]
    assert external == [], external
    assert any(url.endswith("/api/schema/") for url in requested)
