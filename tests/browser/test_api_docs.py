"""The Swagger UI docs page in a real browser: it renders every endpoint and fetches nothing
from outside the server (no CDN)."""

import os
import shutil

import pytest
from django.conf import settings
from django.test import Client

from tests.factories import ExpertFactory

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium_path() -> str:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("EVALHUB_REQUIRE_BROWSER") == "1":
            pytest.fail(
                f"Chromium is required (EVALHUB_REQUIRE_BROWSER=1) but {CHROMIUM} is missing"
            )
        pytest.skip(f"no Chromium at {CHROMIUM}")
    return CHROMIUM


def test_docs_page_renders_the_api_without_fetching_anything_external(
    live_server, transactional_db, chromium_path
):
    from playwright.sync_api import sync_playwright

    client = Client()
    client.force_login(ExpertFactory())
    session = client.cookies[settings.SESSION_COOKIE_NAME].value

    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path)
        context = browser.new_context()
        context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
        )
        page = context.new_page()
        page.on("request", lambda request: requested.append(request.url))
        page.goto(f"{live_server.url}/api/docs/")
        page.wait_for_selector(".opblock-summary-path", timeout=30_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        browser.close()

    assert "/api/assignments/{token}/judgment/" in [p.replace("\u200b", "") for p in paths]
    external = [
        url
        for url in requested
        if url.startswith(("http://", "https://", "//")) and not url.startswith(live_server.url)
    ]
    assert external == [], external
    assert any(url.endswith("/api/schema/") for url in requested)
