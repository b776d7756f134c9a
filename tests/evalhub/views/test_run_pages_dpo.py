"""DPO from the web: the New run form's method and "start from run" fields (the API's run start
takes the same form), and a DPO run's page with its reward curves and the run it starts from."""

import pytest

from tests.evalhub.views.test_run_pages_launch import form_data
from tests.factories import DatasetFactory, ExampleFactory, FineTuneRunFactory
from trainer.engine.checkpoint import ADAPTER_WEIGHTS
from trainer.engine.config import DPO_DEFAULTS
from trainer.models import DatasetKind, FineTuneRun, MetricKind, RunMetric, RunStatus, Split
from trainer.services.runs import DPO_NEEDS_FROM_RUN, NOT_PREFERENCES

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("database_tasks")]


@pytest.fixture
def sft_run(model_dir, tmp_path):
    from trainer.services.runs import base_model_for

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / ADAPTER_WEIGHTS).write_bytes(b"")
    return FineTuneRunFactory(
        name="v1",
        base_model=base_model_for(model_dir),
        status=RunStatus.SUCCEEDED,
        adapter_path=str(adapter),
        hyperparameters={"rank": 8, "alpha": 16, "target_modules": "all-linear"},
    )


def preference_set():
    dataset = DatasetFactory(name="kitchen-v1", kind=DatasetKind.PREFERENCES)
    ExampleFactory(dataset=dataset, index=0, split=Split.TRAIN, rejected="a worse answer")
    return dataset


def test_a_dpo_run_from_the_form_takes_dpos_defaults_where_left_alone(
    manager_client, model_dir, sft_run
):
    data = form_data(preference_set(), model_dir, method="dpo", from_run=sft_run.pk, beta=0.2)
    response = manager_client.post("/runs/new/", data)
    run = FineTuneRun.objects.exclude(pk=sft_run.pk).get()
    assert response.status_code == 302 and run.method == "dpo" and run.from_run == sft_run
    settings = run.hyperparameters
    assert settings["learning_rate"] == DPO_DEFAULTS["learning_rate"]
    assert settings["epochs"] == DPO_DEFAULTS["epochs"] and settings["beta"] == 0.2
    assert settings["rank"] == 8 and settings["alpha"] == 16  # the starting adapter's shape


def test_a_learning_rate_chosen_on_the_form_is_kept_for_dpo(manager_client, model_dir, sft_run):
    data = form_data(
        preference_set(), model_dir, method="dpo", from_run=sft_run.pk, learning_rate=1e-5
    )
    manager_client.post("/runs/new/", data)
    run = FineTuneRun.objects.get(method="dpo")
    assert run.hyperparameters["learning_rate"] == 1e-5


@pytest.mark.parametrize("case", ["no from-run", "not a preference set"])
def test_a_dpo_run_that_cannot_train_is_refused_with_its_reason(
    manager_client, model_dir, sft_run, case
):
    if case == "no from-run":
        dataset, expected = preference_set(), DPO_NEEDS_FROM_RUN
        data = form_data(dataset, model_dir, method="dpo")
    else:
        dataset = DatasetFactory()
        ExampleFactory(dataset=dataset, index=0)
        expected = NOT_PREFERENCES.format(name=dataset.name, kind="examples")
        data = form_data(dataset, model_dir, method="dpo", from_run=sft_run.pk)
    response = manager_client.post("/runs/new/", data)
    assert response.status_code == 400
    assert expected.replace("'", "&#x27;") in response.content.decode()
    assert not FineTuneRun.objects.filter(method="dpo").exists()


def test_the_api_starts_a_dpo_run_with_the_same_form(manager_client, model_dir, sft_run):
    data = {
        "dataset": preference_set().name,
        "base_model": model_dir,
        "method": "dpo",
        "from_run": sft_run.pk,
    }
    response = manager_client.post("/api/runs/", data, content_type="application/json")
    assert response.status_code == 201, response.content
    run = FineTuneRun.objects.get(pk=response.json()["id"])
    assert run.method == "dpo" and run.from_run == sft_run
    assert run.hyperparameters["learning_rate"] == DPO_DEFAULTS["learning_rate"]
    assert response.json()["method"] == "dpo" and response.json()["from_run"] == sft_run.pk


def test_the_api_gives_a_dpo_runs_reward_points(manager_client, sft_run):
    run = FineTuneRunFactory(method="dpo", from_run=sft_run)
    RunMetric.objects.create(
        run=run, kind=MetricKind.VALIDATION, step=4, loss=0.6, reward_accuracy=0.75,
        reward_margin=0.125,
    )  # fmt: skip
    (point,) = manager_client.get(f"/api/runs/{run.pk}/").json()["metrics"]
    assert point["reward_accuracy"] == 0.75 and point["reward_margin"] == 0.125


def test_a_dpo_runs_page_draws_reward_curves_and_links_the_run_it_starts_from(
    manager_client, sft_run
):
    run = FineTuneRunFactory(method="dpo", from_run=sft_run, status=RunStatus.SUCCEEDED)
    for step, accuracy, margin in ((1, 0.5, 0.0), (2, 0.75, 0.4)):
        for kind in (MetricKind.TRAIN, MetricKind.VALIDATION):
            RunMetric.objects.create(
                run=run,
                kind=kind,
                step=step,
                loss=0.69,
                reward_accuracy=accuracy,
                reward_margin=margin,
            )
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    assert f'href="/runs/{sft_run.pk}/">run {sft_run.pk}</a>' in html
    for figure in ("reward accuracy", "reward margin"):
        assert f">{figure}</text>" in html
    for pairs in ("training pairs", "held-out pairs"):
        assert html.count(f'data-series="{pairs}"') == 2  # one line in each chart


def test_an_sft_runs_page_has_no_reward_curves(manager_client):
    run = FineTuneRunFactory()
    RunMetric.objects.create(run=run, kind=MetricKind.TRAIN, step=1, loss=2.0)
    html = manager_client.get(f"/runs/{run.pk}/").content.decode()
    assert "reward" not in html and "starts from" not in html
