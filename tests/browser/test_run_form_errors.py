"""The New run form reports every bad setting at once, each named by its label."""

import pytest
from django.urls import reverse

from tests.browser.test_rating import log_in
from tests.factories import DatasetFactory, ManagerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_every_bad_setting_gets_its_own_message_named_by_its_label(live_server, new_page):
    DatasetFactory(name="kitchen-help")
    page = new_page()
    log_in(page, live_server, ManagerFactory())
    page.goto(live_server.url + reverse("run_new"))
    page.select_option("select[name=dataset]", "kitchen-help")
    page.fill("input[name=rank]", "0")
    page.fill("input[name=batch_size]", "0")
    page.fill("input[name=learning_rate]", "-0.001")
    page.click("summary:has-text('Advanced settings')")
    page.fill("input[name=dropout]", "1.5")
    page.click("button:has-text('Queue the run')")
    page.wait_for_selector(".has-error")
    errors = {
        field.locator("label").inner_text(): field.locator("p.error").inner_text()
        for field in page.locator(".run-field.has-error").all()
    }
    assert errors == {
        "Rank": "Rank must be at least 1, got 0",
        "Batch size": "Batch size must be at least 1, got 0",
        "Learning rate": "Learning rate must be in (0, 1), got -0.001",
        "Dropout": "Dropout must be in [0, 1), got 1.5",
    }
