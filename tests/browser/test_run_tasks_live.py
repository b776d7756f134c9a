"""The open run page follows a queued task and shows its failure without a reload."""

import pytest
from django.test import override_settings
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from evalhub.tasks import evaluate
from tests.browser.test_rating import log_in
from tests.factories import FineTuneRunFactory, ManagerFactory
from trainer.models import RunStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DATABASE_TASKS = {
    "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "gpu"]}
}
REFUSED = "system 'base' already has outputs generated with other settings"


def test_a_task_failing_while_the_page_is_open_shows_its_error_at_the_top(
    live_server, new_page, tmp_path
):
    run = FineTuneRunFactory(status=RunStatus.SUCCEEDED, adapter_path=str(tmp_path))
    with override_settings(TASKS=DATABASE_TASKS):
        task_id = evaluate.enqueue(run_id=run.pk).id
    page = new_page()
    log_in(page, live_server, ManagerFactory())
    page.goto(live_server.url + reverse("run_detail", args=[run.pk]))
    page.evaluate("window.sameDocument = true")
    assert "Waiting for a worker" in page.locator("#run-live").inner_text()

    DBTaskResult.objects.filter(pk=task_id).update(
        status="FAILED",
        exception_class_path="evalhub.selectors.outputs.OutputsError",
        traceback=f"Traceback:\nevalhub.selectors.outputs.OutputsError: {REFUSED}",
    )
    page.wait_for_selector(".run-task-error", timeout=10_000)
    assert page.locator(".run-task-error").inner_text() == REFUSED
    assert page.evaluate("window.sameDocument === true")  # swapped in, not reloaded
    assert "Waiting for a worker" not in page.locator("#run-live").inner_text()
    tasks, progress = (page.locator(s).bounding_box() for s in (".run-tasks-card", ".run-progress"))
    assert tasks["y"] < progress["y"]
