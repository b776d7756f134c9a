"""The outputs page in a real browser: the metric table fits its card on a laptop screen."""

import pytest

from tests.browser.test_rating import log_in
from tests.evalhub.test_outputs_page import add_outputs, add_prompts, url
from tests.factories import BaseModelFactory, FineTuneRunFactory, ManagerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1366, 1280])
def test_the_metric_table_fits_its_card_with_every_column_visible(live_server, new_page, width):
    # A base model with a realistic name makes the longest system label, as in the demo.
    run = FineTuneRunFactory(base_model=BaseModelFactory(name="smollm2-135m"))
    prompts = add_prompts(run, 4)
    add_outputs(run, prompts, [0.1234, 0.2, 0.3, 0.4], [0.5678, 0.6, 0.7, 0.8])
    page = new_page(width, 900)
    log_in(page, live_server, ManagerFactory())
    page.goto(live_server.url + url(run))
    box = page.evaluate(
        """() => {
        const scroll = document.querySelector('.outputs-summary .table-scroll');
        const last = scroll.querySelector('tr th:last-child').getBoundingClientRect();
        return {scroll: scroll.scrollWidth, client: scroll.clientWidth,
                lastRight: last.right, cardRight: scroll.getBoundingClientRect().right};
        }"""
    )
    assert box["scroll"] <= box["client"], box
    assert box["lastRight"] <= box["cardRight"] + 0.5, box
