"""A manager starts a run in a real browser: choosing a dataset brings its lint summary in."""

import pytest
from django.urls import reverse

from tests.browser.test_rating import log_in
from tests.factories import DatasetFactory, ExampleFactory, ManagerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_choosing_a_dataset_swaps_in_its_splits_and_lint_summary(live_server, new_page):
    DatasetFactory(name="first-set")
    chosen = DatasetFactory(
        name="kitchen-help",
        lint_errors=1,
        lint_report=[{"code": "empty-turn", "severity": "error", "message": "empty", "lines": [7]}],
    )
    ExampleFactory(dataset=chosen, split="train")
    page = new_page()
    log_in(page, live_server, ManagerFactory())
    page.goto(live_server.url + reverse("run_new"))
    page.evaluate("window.sameDocument = true")
    lint = page.locator("#dataset-lint")
    assert "Choose a dataset" in lint.inner_text()

    page.select_option("select[name=dataset]", "kitchen-help")
    page.wait_for_function(
        "() => document.querySelector('#dataset-lint').innerText.includes('kitchen-help')"
    )
    assert "1 lint errors" in lint.inner_text()
    assert page.evaluate("window.sameDocument === true")  # swapped in, not reloaded
