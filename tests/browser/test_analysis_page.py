"""The analysis page as a lead reads it at 1366 px: nothing runs past the page or a chart."""

import pytest

from evalhub.models import Judgment, System
from tests.browser.test_rating import log_in
from tests.evalhub.report_fixtures import build_study
from tests.factories import ManagerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADAPTER = "qlora-smollm2-135m-instruct-support-tickets-r16-lr2e-4"
BASE = "smollm2-135m-instruct (base model, greedy decoding)"

OVERFLOWS = """() => {
  const out = [];
  for (const svg of document.querySelectorAll('.report svg')) {
    const box = svg.getBoundingClientRect();
    for (const text of svg.querySelectorAll('text')) {
      const r = text.getBoundingClientRect();
      if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1
          || r.bottom > box.bottom + 1)
        out.push([svg.getAttribute('aria-label'), text.textContent.slice(0, 60)]);
    }
  }
  return {texts: out, page: document.documentElement.scrollWidth - window.innerWidth,
          report: [...document.querySelectorAll('.report section')]
            .filter(s => s.scrollWidth > s.clientWidth + 1).map(s => s.id)};
}"""


def test_no_chart_text_or_table_runs_past_the_page_at_1366_px(live_server, new_page, artifacts):
    study = build_study()
    System.objects.filter(kind="adapter").update(name=ADAPTER)
    System.objects.filter(kind="base").update(name=BASE)
    page = new_page(1366, 900)
    log_in(page, live_server, ManagerFactory())
    page.goto(f"{live_server.url}/studies/{study.pk}/analysis/")
    assert page.locator("#conclusion").inner_text().startswith(f"No verdict yet: {ADAPTER} wins")
    page.screenshot(path=str(artifacts / "analysis-1366.png"), full_page=True)
    for section in ("ties", "length-control", "agreement"):
        page.locator(f"#{section}").screenshot(path=str(artifacts / f"analysis-{section}.png"))
    found = page.evaluate(OVERFLOWS)
    assert found == {"texts": [], "page": 0, "report": []}, found
    # every chart shows axis values: a percent or signed tick in each one
    charts = page.locator(".report svg.chart")
    assert charts.count() >= 5
    for i in range(charts.count()):
        ticks = charts.nth(i).locator("text").all_text_contents()
        assert any(t.endswith("%") or t.lstrip("+-").replace(".", "").isdigit() for t in ticks)


def test_the_raters_better_answers_read_across_a_phone(live_server, new_page, artifacts):
    study = build_study()
    answer = "Answer: 0.5 US cups\nWorking: 125 ml ÷ 236.6 ml per US cup = 0.53 US cups."
    Judgment.objects.filter(assignment__comparison__study=study).update(correction=answer)
    page = new_page(390, 844)
    log_in(page, live_server, ManagerFactory())
    page.goto(f"{live_server.url}/studies/{study.pk}/analysis/")
    listed = page.locator("#corrections table.corrections")
    listed.locator("tbody tr").first.screenshot(path=str(artifacts / "corrections-390.png"))
    table = listed.bounding_box()
    cell = listed.locator("td.text").first.bounding_box()
    # four fixed columns had left the answer about 45 px, a word per line
    assert cell["width"] > 0.9 * table["width"], (cell, table)
    assert table["x"] >= 0 and table["x"] + table["width"] <= 390


def test_nothing_runs_past_a_phone_the_loss_curves_neither(live_server, new_page, artifacts):
    # A phone shows a page wider than itself zoomed out, every line unreadably small: the run's
    # 640 px loss chart did that to the whole analysis page.
    page = new_page(390, 844)
    log_in(page, live_server, ManagerFactory())
    page.goto(f"{live_server.url}/studies/{build_study().pk}/analysis/")
    page.screenshot(path=str(artifacts / "analysis-390.png"), full_page=True)
    found = page.evaluate(OVERFLOWS)
    assert (found["page"], found["report"]) == (0, []), found
    curves = page.locator(".report svg.loss-chart").bounding_box()
    assert curves["x"] >= 0 and curves["x"] + curves["width"] <= 390
