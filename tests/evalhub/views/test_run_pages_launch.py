"""Runs from the web: the New run form, the run page's live part and its buttons, the runs list.

Tasks go to the database backend here (no worker runs), so the tests see what was queued.
"""

import socket
import subprocess
import sys

import pytest
from django_tasks_db.models import DBTaskResult

from evalhub.forms.runs import NAME_TAKEN
from evalhub.services.systems import NO_ADAPTER
from evalhub.views.run_evaluation import ALREADY
from evalhub.views.run_launch import NOT_ACTIVE, RETRIED
from tests.factories import BaseModelFactory, DatasetFactory, FineTuneRunFactory
from tests.trainer.run_fixtures import colour_dataset
from trainer.engine.config import MUST_BE_POSITIVE, TrainConfig
from trainer.engine.generate import DecodingConfig
from trainer.models import FineTuneRun, RunStatus
from trainer.services.run_queue import run_enqueue
from trainer.services.runs import NO_CHECKPOINT, NOT_RESUMABLE, NOT_RETRYABLE, ORPHANED

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("database_tasks"),
]


def form_data(dataset, model_dir, **changes):
    data = {name: value for name, value in TrainConfig().as_dict().items()}
    data.update(dataset=dataset.name, base_model=model_dir, name="", alpha="")
    data.update(changes)
    return data


def dead_worker() -> str:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return f"{socket.gethostname()}:{process.pid}"


# --- permissions -----------------------------------------------------------------------------

PAGES = [
    ("get", "/runs/new/"),
    ("post", "/runs/new/"),
    ("post", "/runs/{pk}/cancel/"),
    ("post", "/runs/{pk}/resume/"),
    ("post", "/runs/{pk}/retry/"),
    ("get", "/runs/{pk}/clone/"),
    ("post", "/runs/{pk}/evaluate/"),
]


@pytest.mark.parametrize(("method", "path"), PAGES)
@pytest.mark.parametrize(("who", "expected"), [("anonymous", 302), ("expert", 403)])
def test_only_managers_reach_run_actions(client, expert, method, path, who, expected):
    run = FineTuneRunFactory()
    if who == "expert":
        client.force_login(expert)
    response = getattr(client, method)(path.format(pk=run.pk))
    assert response.status_code == expected
    if expected == 302:
        assert response["Location"].startswith("/accounts/login/")
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and not DBTaskResult.objects.exists()


@pytest.mark.parametrize("path", ["/runs/{pk}/cancel/", "/runs/{pk}/resume/", "/runs/{pk}/retry/"])
def test_buttons_take_only_post(manager_client, path):
    run = FineTuneRunFactory()
    assert manager_client.get(path.format(pk=run.pk)).status_code == 405


# --- the New run form --------------------------------------------------------------------------


def test_the_form_is_prefilled_with_the_engine_defaults_and_their_reasons(manager_client):
    colour_dataset(name="colours")
    html = manager_client.get("/runs/new/").content.decode()
    assert 'name="rank" value="16"' in html
    assert 'name="learning_rate" value="0.0002"' in html
    assert 'name="epochs" value="3"' in html
    assert "LoRA rank: 16–64 is the useful range" in html
    assert "peak learning rate: 2e-4 is the usual QLoRA peak" in html
    assert 'name="base_model" value="smollm2-135m"' in html
    advanced = html.split("<details", 1)[1].split("</details>", 1)[0]
    assert 'name="scheduler"' in advanced and 'name="seed"' in advanced
    assert 'name="rank"' not in advanced
    assert "colours (0 lint errors, 0 warnings)" in html


def test_the_dataset_from_the_link_is_preselected_with_its_lint_summary(manager_client):
    dataset = colour_dataset(
        name="noisy",
        lint_errors=1,
        lint_warnings=1,
        lint_report=[
            {"severity": "error", "code": "empty-turn", "message": "line 3 has an empty turn"},
            {"severity": "warning", "code": "near-duplicate", "message": "lines 4 and 9"},
        ],
    )
    html = manager_client.get(f"/runs/new/?dataset={dataset.name}").content.decode()
    assert '<option value="noisy" selected>' in html
    assert "train 10 · validation 5 · feedback 0 · test 1" in html
    assert "line 3 has an empty turn" in html and "near-duplicate" in html


def test_choosing_a_dataset_with_htmx_fetches_only_its_lint_summary(manager_client):
    colour_dataset(name="colours")
    response = manager_client.get("/runs/new/?dataset=colours", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="dataset-lint"')
    assert "train 10 · validation 5 · feedback 0 · test 1" in html and "<form" not in html
    assert "HX-Request" in response["Vary"]


def test_a_valid_form_creates_the_run_queues_it_and_opens_its_page(manager_client, model_dir):
    dataset = colour_dataset()
    data = form_data(dataset, model_dir, rank=8, learning_rate=0.001, max_steps=30)
    response = manager_client.post("/runs/new/", data)
    run = FineTuneRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}/"
    assert run.status == RunStatus.QUEUED and run.dataset == dataset
    assert run.hyperparameters == TrainConfig(rank=8, learning_rate=0.001, max_steps=30).as_dict()
    assert run.hyperparameters["alpha"] == 16  # left empty: 2 × rank
    task = DBTaskResult.objects.get()
    assert task.queue_name == "gpu" and task.args_kwargs["kwargs"] == {"run_id": run.pk}


def test_out_of_range_settings_are_shown_beside_their_field(manager_client, model_dir):
    data = form_data(colour_dataset(), model_dir, rank=0)
    response = manager_client.post("/runs/new/", data)
    assert response.status_code == 400
    html = response.content.decode()
    field = html.split('name="rank"', 1)[1].split("</div>", 1)[0]
    assert MUST_BE_POSITIVE.format(name="Rank", value=0) in field
    assert not FineTuneRun.objects.exists() and not DBTaskResult.objects.exists()


def test_a_setting_error_in_the_advanced_fold_opens_it(manager_client, model_dir):
    data = form_data(colour_dataset(), model_dir, warmup_ratio=1.5)
    html = manager_client.post("/runs/new/", data).content.decode()
    assert '<details class="run-advanced" open>' in html
    assert "Warmup ratio must be in [0, 1), got 1.5" in html


def test_an_unknown_base_model_is_refused_on_its_field(manager_client):
    data = form_data(colour_dataset(), "/no/such/model")
    response = manager_client.post("/runs/new/", data)
    html = response.content.decode()
    assert response.status_code == 400
    field = html.split('name="base_model"', 1)[1].split("</div>", 1)[0]
    assert "/no/such/model" in field and "neither a packaged model" in field
    assert not FineTuneRun.objects.exists()


def test_a_dataset_with_lint_errors_needs_the_force_box(manager_client, model_dir):
    dataset = colour_dataset(
        lint_errors=1,
        lint_report=[{"severity": "error", "code": "empty-turn", "lines": [3], "message": "x"}],
    )
    refused = manager_client.post("/runs/new/", form_data(dataset, model_dir))
    assert refused.status_code == 400
    assert "1 lint error(s)" in refused.content.decode()
    assert not FineTuneRun.objects.exists()
    forced = manager_client.post("/runs/new/", form_data(dataset, model_dir, force="on"))
    assert forced.status_code == 302 and FineTuneRun.objects.count() == 1


def test_a_name_another_run_has_is_refused_on_its_field(manager_client, model_dir):
    FineTuneRunFactory(name="kitchen")
    response = manager_client.post(
        "/runs/new/", form_data(colour_dataset(), model_dir, name="kitchen")
    )
    assert response.status_code == 400
    field = response.content.decode().split('name="name"', 1)[1].split("</div>", 1)[0]
    assert NAME_TAKEN.format(name="kitchen").replace("'", "&#x27;") in field
    assert FineTuneRun.objects.count() == 1 and not DBTaskResult.objects.exists()


def test_a_dataset_without_training_examples_is_refused_on_its_field(manager_client, model_dir):
    dataset = DatasetFactory()
    response = manager_client.post("/runs/new/", form_data(dataset, model_dir))
    assert response.status_code == 400
    assert "has no example in its train split" in response.content.decode()


# --- the run page: live part, polling, buttons ---------------------------------------------------


@pytest.mark.parametrize("status", [RunStatus.QUEUED, RunStatus.RUNNING])
def test_an_active_run_polls_its_live_part_every_two_seconds(manager_client, status):
    run = FineTuneRunFactory(status=status, worker="elsewhere:1")
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    assert f'hx-get="/runs/{run.pk}/" hx-trigger="every 2s"' in html


def test_the_poll_answer_is_only_the_live_part(manager_client):
    run = FineTuneRunFactory(status=RunStatus.RUNNING, step=3, total_steps=12, worker="elsewhere:1")
    response = manager_client.get(f"/runs/{run.pk}/", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="run-live"')
    assert "<html" not in html and "3 / 12 (25 %)" in html
    assert 'hx-trigger="every 2s"' in html
    assert "HX-Request" in response["Vary"]


@pytest.mark.parametrize(
    "status",
    [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.INTERRUPTED],
)
def test_polling_stops_once_the_run_has_ended(manager_client, status):
    run = FineTuneRunFactory(status=status)
    html = manager_client.get(f"/runs/{run.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in html and "hx-get" not in html
    assert f"status-{status}" in html


def test_a_finished_run_offers_evaluation_outputs_and_a_study(manager_client, tmp_path):
    run = FineTuneRunFactory(status=RunStatus.SUCCEEDED, adapter_path=str(tmp_path))
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    assert f'action="/runs/{run.pk}/evaluate/"' in html
    assert f'href="/runs/{run.pk}/outputs/"' in html
    assert f'href="/studies/new/?run={run.pk}"' in html
    assert "/cancel/" not in html and "/resume/" not in html


def test_a_running_run_offers_cancel_only(manager_client):
    run = FineTuneRunFactory(status=RunStatus.RUNNING, worker="elsewhere:1")
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    assert f'action="/runs/{run.pk}/cancel/"' in html
    assert "/resume/" not in html and "/evaluate/" not in html


def test_a_stopped_run_with_a_checkpoint_offers_resume(manager_client):
    run = FineTuneRunFactory(status=RunStatus.INTERRUPTED, step=40, checkpoint_path="/x/ckpt")
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    assert f'action="/runs/{run.pk}/resume/"' in html and "Resume from step 40" in html


def test_the_page_lists_the_runs_tasks_and_says_when_no_worker_took_one(manager_client):
    run = FineTuneRunFactory()
    run_enqueue(run=run)
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    assert "<td>finetune</td><td>gpu</td><td>ready</td>" in html
    assert "manage.py db_worker --queue-name gpu" in html


def test_the_status_comes_first_under_the_title_and_says_what_the_run_does(manager_client):
    run = FineTuneRunFactory(
        status=RunStatus.RUNNING, step=3, total_steps=12, eta_seconds=95, worker="elsewhere:1"
    )
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    after_title = html.split("</h1>", 1)[1]
    live = after_title.split('<div id="run-live"', 1)
    assert live[0].strip() == "" and live[1].split(">", 1)[1].lstrip().startswith(
        '<section class="run-banner run-banner-running" role="status">'
    )
    banner = live[1].split("</section>", 1)[0]
    assert "training: step 3 of 12 (25 %), about 1 min 35 s left" in banner
    assert f'action="/runs/{run.pk}/cancel/"' in banner


@pytest.mark.parametrize(
    ("fields", "line"),
    [
        ({"status": RunStatus.QUEUED}, "waiting for a worker to take it"),
        ({"status": RunStatus.RUNNING, "total_steps": 0}, "loading the model and the data"),
        ({"status": RunStatus.RUNNING}, "training: step 5 of 10 (50 %)"),  # no ETA yet
        (
            {"status": RunStatus.RUNNING, "cancel_requested": True},
            "cancel requested: stops at the next step",
        ),
        (
            {"status": RunStatus.SUCCEEDED, "early_stopped": True, "wall_seconds": 201},
            "finished at step 5 of 10, stopped early in 3 min 21 s",
        ),
        (
            {"status": RunStatus.CANCELLED, "checkpoint_path": "/x/ckpt"},
            "cancelled at step 5 of 10; its checkpoint is kept",
        ),
        (
            {"status": RunStatus.INTERRUPTED, "checkpoint_path": "/x/ckpt"},
            "stopped at step 5 of 10; its checkpoint is kept",
        ),
    ],
)
def test_the_status_line_says_what_the_run_does(manager_client, fields, line):
    run = FineTuneRunFactory(**{"step": 5, "total_steps": 10, "worker": "elsewhere:1", **fields})
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    banner = html.split('class="run-status-line"', 1)[1].split("</p>", 1)[0]
    assert banner.endswith(f"</span> {line}")


def test_a_failed_runs_status_line_gives_the_first_line_of_its_error(manager_client):
    run = FineTuneRunFactory(
        status=RunStatus.FAILED, step=2, total_steps=8, error="out of memory\ntraceback…"
    )
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    banner = html.split('class="run-banner', 1)[1].split("</section>", 1)[0]
    assert "stopped at step 2 of 8: out of memory" in banner and "traceback" not in banner


# --- cancel and resume ---------------------------------------------------------------------------


def test_cancelling_a_queued_run_cancels_it_at_once(manager_client):
    run = FineTuneRunFactory(status=RunStatus.QUEUED)
    response = manager_client.post(f"/runs/{run.pk}/cancel/")
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}/"
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED


def test_cancelling_a_running_run_asks_it_to_stop_at_its_next_step(manager_client):
    run = FineTuneRunFactory(status=RunStatus.RUNNING, worker="elsewhere:1")
    manager_client.post(f"/runs/{run.pk}/cancel/")
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.cancel_requested
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    assert "cancel requested: stops at the next step" in html
    assert f'action="/runs/{run.pk}/cancel/"' not in html


def test_cancelling_a_finished_run_is_a_conflict(manager_client):
    run = FineTuneRunFactory(status=RunStatus.SUCCEEDED)
    response = manager_client.post(f"/runs/{run.pk}/cancel/")
    assert response.status_code == 409
    message = NOT_ACTIVE.format(id=run.pk, status=RunStatus.SUCCEEDED)
    assert message in response.content.decode()


def test_resuming_a_run_without_a_checkpoint_is_a_conflict(manager_client):
    run = FineTuneRunFactory(status=RunStatus.INTERRUPTED)
    response = manager_client.post(f"/runs/{run.pk}/resume/")
    assert response.status_code == 409
    assert NO_CHECKPOINT.format(id=run.pk) in response.content.decode()
    assert FineTuneRun.objects.count() == 1 and not DBTaskResult.objects.exists()


def test_resuming_a_succeeded_run_is_a_conflict(manager_client):
    run = FineTuneRunFactory(status=RunStatus.SUCCEEDED)
    response = manager_client.post(f"/runs/{run.pk}/resume/")
    assert response.status_code == 409
    expected = NOT_RESUMABLE.format(id=run.pk, status=RunStatus.SUCCEEDED)
    assert expected in response.content.decode()


# --- orphans, the runs list, the dataset page -----------------------------------------------


@pytest.mark.parametrize("path", ["/runs/", "/runs/{pk}/"])
def test_loading_a_runs_page_marks_a_run_of_a_dead_worker_interrupted(manager_client, path):
    run = FineTuneRunFactory(status=RunStatus.RUNNING, worker=dead_worker())
    html = manager_client.get(path.format(pk=run.pk)).content.decode()
    run.refresh_from_db()
    assert run.status == RunStatus.INTERRUPTED
    assert "status-interrupted" in html
    assert ORPHANED.split(" ", 1)[0] in run.error


def test_the_runs_list_shows_key_numbers_and_a_new_run_button(manager_client):
    FineTuneRunFactory(
        name="kitchen-r16",
        status=RunStatus.SUCCEEDED,
        step=40,
        total_steps=40,
        best_val_loss=0.41234,
        wall_seconds=201.4,
        adapter_size_bytes=19_545_000,
    )
    html = manager_client.get("/runs/").content.decode()
    assert 'href="/runs/new/"' in html
    assert "40 / 40" in html and "0.4123" in html and "201 s" in html and "18.6\xa0MB" in html


def test_the_dataset_page_links_to_a_new_run_on_it(manager_client):
    dataset = DatasetFactory(name="kitchen")
    html = manager_client.get(f"/datasets/{dataset.name}/").content.decode()
    assert 'href="/runs/new/?dataset=kitchen"' in html


# --- generate + score ------------------------------------------------------------------------


def test_evaluating_a_run_without_an_adapter_is_a_conflict(manager_client):
    run = FineTuneRunFactory(status=RunStatus.SUCCEEDED)
    response = manager_client.post(f"/runs/{run.pk}/evaluate/")
    assert response.status_code == 409
    assert NO_ADAPTER.format(run_id=run.pk) in response.content.decode()
    assert not DBTaskResult.objects.exists()


def test_generate_and_score_is_queued_once_for_a_gpu_worker(manager_client, tmp_path):
    run = FineTuneRunFactory(status=RunStatus.SUCCEEDED, adapter_path=str(tmp_path))
    first = manager_client.post(f"/runs/{run.pk}/evaluate/", follow=True)
    assert "Waiting for a worker on the <code>gpu</code> queue" in first.content.decode()
    second = manager_client.post(f"/runs/{run.pk}/evaluate/", follow=True)
    assert ALREADY.format(id=run.pk) in second.content.decode()
    task = DBTaskResult.objects.get()
    assert task.task_path == "evalhub.tasks.evaluate" and task.queue_name == "gpu"
    assert task.args_kwargs["kwargs"] == {"run_id": run.pk, **DecodingConfig().as_dict()}
    assert "<td>evaluate</td><td>gpu</td><td>ready</td>" in second.content.decode()


# --- retry and clone ---------------------------------------------------------------------------


def failed_run(model_dir, **changes):
    dataset = colour_dataset()
    settings = TrainConfig(rank=8, learning_rate=0.001, max_steps=30).as_dict()
    fields = {"status": RunStatus.FAILED, "error": "out of memory", "hyperparameters": settings}
    return FineTuneRunFactory(
        name="kitchen",
        dataset=dataset,
        dataset_hash=dataset.content_hash,
        base_model=BaseModelFactory(name=model_dir, source=model_dir),
        **{**fields, **changes},
    )


@pytest.mark.parametrize("status", [RunStatus.FAILED, RunStatus.CANCELLED])
def test_a_stopped_run_offers_retry_and_clone(manager_client, model_dir, status):
    run = failed_run(model_dir, status=status)
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    banner = html.split('class="run-banner', 1)[1].split("</section>", 1)[0]
    assert f'action="/runs/{run.pk}/retry/"' in banner and "Retry from step 0" in banner
    assert f'href="/runs/{run.pk}/clone/"' in banner


def test_retry_queues_a_new_run_whose_page_names_the_run_it_retries(manager_client, model_dir):
    run = failed_run(model_dir)
    response = manager_client.post(f"/runs/{run.pk}/retry/", follow=True)
    retry = FineTuneRun.objects.exclude(pk=run.pk).get()
    assert response.redirect_chain == [(f"/runs/{retry.pk}/", 302)]
    assert (retry.status, retry.retry_of, retry.name) == (RunStatus.QUEUED, run, "kitchen-retry")
    assert retry.hyperparameters == run.hyperparameters and retry.base_model == run.base_model
    task = DBTaskResult.objects.get()
    assert task.queue_name == "gpu" and task.args_kwargs["kwargs"] == {"run_id": retry.pk}
    html = response.content.decode()
    assert RETRIED.format(id=retry.pk, previous=run.pk, name="kitchen-retry") in html
    assert f'retries <a href="/runs/{run.pk}/">run {run.pk}</a>' in html
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED  # the retried run stays what it was


@pytest.mark.parametrize("status", [RunStatus.SUCCEEDED, RunStatus.RUNNING])
def test_retrying_a_run_that_did_not_stop_early_is_a_conflict(manager_client, model_dir, status):
    run = failed_run(model_dir, status=status, worker="elsewhere:1")
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    assert "/retry/" not in html
    response = manager_client.post(f"/runs/{run.pk}/retry/")
    assert response.status_code == 409
    assert NOT_RETRYABLE.format(id=run.pk, status=status) in response.content.decode()
    assert FineTuneRun.objects.count() == 1 and not DBTaskResult.objects.exists()


def test_clone_opens_the_new_run_form_with_the_runs_dataset_model_and_settings(
    manager_client, model_dir
):
    run = failed_run(model_dir)
    html = manager_client.get(f"/runs/{run.pk}/clone/").content.decode()
    assert f'<option value="{run.dataset.name}" selected>' in html
    assert f'name="base_model" value="{model_dir}"' in html
    assert 'name="rank" value="8"' in html and 'name="learning_rate" value="0.001"' in html
    assert 'name="max_steps" value="30"' in html
    alpha = html.split('name="alpha"', 1)[1].split(">", 1)[0]
    assert "value=" not in alpha  # 2 × rank: left empty, so it follows a changed rank


def test_a_clone_keeps_an_alpha_that_is_not_twice_the_rank(manager_client, model_dir):
    run = failed_run(model_dir, hyperparameters=TrainConfig(rank=8, alpha=8).as_dict())
    html = manager_client.get(f"/runs/{run.pk}/clone/").content.decode()
    assert 'name="alpha" value="8"' in html
    assert 'action="/runs/new/"' in html and "train 10 · validation 5 · feedback 0 · test 1" in html
    assert f'copied from <a href="/runs/{run.pk}/">run {run.pk} (kitchen)</a>' in html


def test_a_changed_clone_is_queued_as_a_new_run(manager_client, model_dir):
    run = failed_run(model_dir)
    data = form_data(run.dataset, model_dir, **run.hyperparameters)
    data.update(rank=4, alpha="", name="kitchen-r4")
    response = manager_client.post("/runs/new/", data)
    clone = FineTuneRun.objects.get(name="kitchen-r4")
    assert response["Location"] == f"/runs/{clone.pk}/"
    expected = TrainConfig(rank=4, learning_rate=0.001, max_steps=30).as_dict()
    assert clone.hyperparameters == expected and clone.retry_of is None


def test_cloning_a_run_that_does_not_exist_is_not_found(manager_client):
    assert manager_client.get("/runs/999/clone/").status_code == 404
