"""The run page's status sits first under its title and follows the run live until it ends; a
stopped run is retried from there; the loss curves span their card."""

import time

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from tests.browser.test_rating import log_in
from tests.factories import FineTuneRunFactory, ManagerFactory
from tests.trainer.run_fixtures import colour_dataset, small_config
from trainer.models import FineTuneRun, MetricKind, RunMetric, RunStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DATABASE_TASKS = {
    "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "gpu"]}
}


def queued_run() -> FineTuneRun:
    dataset = colour_dataset()
    return FineTuneRunFactory(
        name="kitchen",
        dataset=dataset,
        dataset_hash=dataset.content_hash,
        hyperparameters=small_config().as_dict(),
    )


def test_the_status_leads_the_page_follows_the_run_and_stops_polling_once_it_failed(
    live_server, new_page, artifacts
):
    run = queued_run()
    page = new_page(1366, 800)
    log_in(page, live_server, ManagerFactory())
    page.goto(live_server.url + reverse("run_detail", args=[run.pk]))
    page.evaluate("window.sameDocument = true")
    banner = page.locator(".run-banner")
    assert "queued" in banner.inner_text() and "waiting for a worker" in banner.inner_text()
    title, status = page.locator("h1").bounding_box(), banner.bounding_box()
    # Nothing between the title and the status; the facts of the run come after it.
    assert 0 <= status["y"] - (title["y"] + title["height"]) <= 24
    for later in ("#run-live > p.muted", ".run-progress", ".run-curves"):
        assert page.locator(later).bounding_box()["y"] > status["y"] + status["height"]

    FineTuneRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING,
        step=3,
        total_steps=12,
        eta_seconds=90,
        worker="elsewhere:1",
        heartbeat_at=timezone.now(),
    )
    page.wait_for_function(
        "document.querySelector('.run-banner').innerText.includes('step 3 of 12')"
    )
    assert page.locator(".run-banner-running").count() == 1

    FineTuneRun.objects.filter(pk=run.pk).update(
        status=RunStatus.FAILED, error="out of memory\nTraceback …", finished_at=timezone.now()
    )
    page.wait_for_selector(".run-banner-failed", timeout=10_000)
    assert "stopped at step 3 of 12: out of memory" in banner.inner_text()
    assert page.evaluate("window.sameDocument === true")  # swapped in, not reloaded
    page.screenshot(path=str(artifacts / "run-failed.png"), full_page=True)

    polls = []
    page.on("request", lambda request: polls.append(request.url))
    time.sleep(5)  # more than two polling intervals
    assert polls == []

    with override_settings(TASKS=DATABASE_TASKS):
        page.get_by_role("button", name="Retry from step 0").click()
        page.wait_for_selector(".run-banner-queued")
    retry = FineTuneRun.objects.get(retry_of=run)
    assert page.url.endswith(reverse("run_detail", args=[retry.pk]))
    assert retry.name == "kitchen-retry" and "kitchen-retry" in page.locator("h1").inner_text()
    assert f"retries run {run.pk}" in page.locator("#run-live > p.muted").inner_text()


@pytest.mark.parametrize("width", [1366, 1280, 800])
def test_the_loss_curves_span_their_card_above_learning_rate_and_gradient_norm(
    live_server, new_page, artifacts, width
):
    run = queued_run()
    FineTuneRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED, total_steps=40)
    for step in range(1, 41):
        RunMetric.objects.create(
            run=run,
            kind=MetricKind.TRAIN,
            step=step,
            loss=2.5 - step / 40,
            learning_rate=2e-4 * min(1, step / 4),
            grad_norm=3 / step,
        )
    page = new_page(width, 900)
    log_in(page, live_server, ManagerFactory())
    page.goto(live_server.url + reverse("run_detail", args=[run.pk]))
    card = page.locator(".run-curves")
    inner = card.evaluate("c => c.clientWidth - 2 * parseFloat(getComputedStyle(c).paddingLeft)")
    charts = [svg.bounding_box() for svg in card.locator("svg.loss-chart").all()]
    assert len(charts) == 3
    assert abs(charts[0]["width"] - inner) <= 1
    # The two small charts share the row below (stacked on a narrow screen), each readable.
    assert all(chart["y"] > charts[0]["y"] + charts[0]["height"] for chart in charts[1:])
    assert all(chart["width"] >= min(400, inner / 2 - 20) for chart in charts[1:])
    ticks = card.locator("svg.loss-chart").nth(1).locator("text.tick-y").all_text_contents()
    assert ticks[-1] == "2.0e-4"
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    card.screenshot(path=str(artifacts / f"run-curves-{width}.png"))
