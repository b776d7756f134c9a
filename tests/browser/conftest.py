"""Headless Chromium through Playwright for the browser tests.

Debian's Chromium at /usr/bin/chromium (installed by .ci/run). Without it the browser tests
skip, saying why, unless EVALHUB_REQUIRE_BROWSER=1 (CI), in which case they fail.
"""

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def chromium():
    """One browser per test module, torn down with it: Playwright's sync API keeps an event loop
    running in this thread while it lives, which would break later tests that call asyncio.run,
    and Django refuses ORM calls from a thread with a running loop unless told otherwise."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium to run the browser tests"
        if os.environ.get("EVALHUB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason} (EVALHUB_REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def new_page(chromium):
    """Open pages in fresh browser contexts (own cookies, viewport, JavaScript on or off)."""
    contexts = []

    def open_page(width: int = 1280, height: int = 800, **options):
        context = chromium.new_context(viewport={"width": width, "height": height}, **options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def artifacts() -> Path:
    """test-artifacts/ (gitignored): screenshots for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
