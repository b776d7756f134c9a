"""What managers write besides studies: a dataset uploaded as the upload page does (multipart,
the page's fields, defaults and messages) and a run started as the New run form does (JSON).
Every refusal names its field and stores nothing."""

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django_tasks_db.models import DBTaskResult

from evalhub.api.form_input import NOT_AN_OBJECT
from evalhub.forms import datasets as dataset_forms
from tests.factories import DatasetFactory
from tests.trainer.datasets.helpers import distinct_records
from tests.trainer.run_fixtures import colour_dataset
from tests.trainer.worker_support import DATABASE_TASKS
from trainer.datasets import DEFAULT_RATIOS
from trainer.engine.config import MUST_BE_POSITIVE, TrainConfig
from trainer.models import Dataset, Example, FineTuneRun, RunStatus
from trainer.services.datasets import NAME_TAKEN, REFUSED_ERRORS

NOISY = Path(__file__).resolve().parents[3] / "trainer" / "demo_data" / "noisy.jsonl"
DATASETS, RUNS = "/api/datasets/", "/api/runs/"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "uploads"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def database_tasks():
    """Queued tasks stay in the database (no worker): a started run is only queued."""
    with override_settings(TASKS=DATABASE_TASKS):
        yield


@pytest.fixture
def manager_api(manager, login):
    return login(manager)


@pytest.fixture
def model_dir(tmp_path) -> str:
    """A directory the base-model check accepts (weights are never loaded: no worker runs)."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    (tmp_path / "model" / "model.safetensors").write_bytes(b"")
    return str(tmp_path / "model")


def jsonl(records, name="data.jsonl") -> SimpleUploadedFile:
    body = "".join(json.dumps(r) + "\n" for r in records).encode()
    return SimpleUploadedFile(name, body, content_type="application/octet-stream")


def upload(client, file, **fields):
    return client.post(DATASETS, {"file": file, "name": "api-upload", **fields}, format="multipart")


def rows() -> tuple[int, int]:
    return Dataset.objects.count(), Example.objects.count()


# --- uploading a dataset ------------------------------------------------------------------------


def test_an_upload_is_stored_at_the_pages_defaults_and_answered_with_its_detail(
    manager_api, manager, media_root
):
    response = upload(manager_api, jsonl(distinct_records(30)))
    assert response.status_code == 201, response.content
    body = response.json()
    dataset = Dataset.objects.get(name="api-upload")
    assert body["id"] == dataset.pk and body["example_count"] == 30
    assert body["train_count"] + body["validation_count"] + body["test_count"] == 30
    assert body["lint_report"] == dataset.lint_report
    assert (dataset.created_by, dataset.seed, dataset.source_filename) == (manager, 0, "data.jsonl")
    assert dataset.split_ratios == list(DEFAULT_RATIOS)
    assert (media_root / "datasets" / "api-upload" / "data.jsonl").is_file()


def test_upload_options_reach_the_import(manager_api):
    fields = {"split": "0.5,0.25,0.25", "seed": 7, "format": "messages"}
    response = upload(manager_api, jsonl(distinct_records(20)), **fields)
    assert response.status_code == 201, response.content
    dataset = Dataset.objects.get()
    assert (dataset.split_ratios, dataset.seed) == ([0.5, 0.25, 0.0, 0.25], 7)
    assert dataset.format == "messages"


def test_a_refused_upload_is_422_with_the_report_and_stores_nothing(manager_api, media_root):
    response = upload(manager_api, SimpleUploadedFile("noisy.jsonl", NOISY.read_bytes()))
    assert response.status_code == 422
    body = response.json()
    assert body["file"] == [REFUSED_ERRORS.format(n=5)]
    assert body["dataset"] == "api-upload" and body["counts"]
    issues = {issue["code"]: issue["lines"] for issue in body["issues"]}
    assert issues["split-leakage"] == [2, 30]
    assert rows() == (0, 0)
    assert not (media_root / "datasets" / "api-upload").exists()


def test_strict_refuses_warnings_too(manager_api):
    records = distinct_records(20)
    response = upload(manager_api, jsonl([*records, records[0]]), strict=True)
    assert response.status_code == 422
    assert "exact-duplicate" in {issue["code"] for issue in response.json()["issues"]}
    assert rows() == (0, 0)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"split": "0.9,0.2,0.1"}, "split", "split ratios must sum to 1"),
        ({"name": "not a slug"}, "name", "Enter a valid"),
        ({"name": "upload"}, "name", "is reserved"),
        ({"format": "yaml"}, "format", "Select a valid choice"),
        ({"seed": "seven"}, "seed", "Enter a whole number."),
    ],
)
def test_bad_upload_fields_are_400_naming_the_field_with_the_pages_message(
    manager_api, fields, field, message
):
    response = upload(manager_api, jsonl(distinct_records(3)), **fields)
    assert response.status_code == 400
    errors = response.json()
    assert list(errors) == [field]
    assert message in errors[field][0]
    assert rows() == (0, 0)


def test_a_taken_name_is_400_on_name(manager_api):
    DatasetFactory(name="api-upload")
    response = upload(manager_api, jsonl(distinct_records(3)))
    assert response.status_code == 400
    assert response.json() == {"name": [NAME_TAKEN.format(name="api-upload")]}
    assert rows() == (1, 0)


def test_a_malformed_file_is_400_on_file_naming_the_uploaded_file_and_line(manager_api):
    bad = SimpleUploadedFile("mine.jsonl", b'{"messages": []}\n{"messages": [\n')
    response = upload(manager_api, bad)
    assert response.status_code == 400
    assert response.json()["file"][0].startswith("mine.jsonl: line 2: broken JSON")
    assert rows() == (0, 0)


def test_an_upload_over_the_size_limit_is_400_on_file(manager_api, monkeypatch):
    monkeypatch.setattr(dataset_forms, "MAX_UPLOAD_MB", 0)
    response = upload(manager_api, jsonl(distinct_records(3)))
    assert response.status_code == 400
    assert "the upload takes at most 0 MB" in response.json()["file"][0]
    assert rows() == (0, 0)


def test_an_upload_without_a_file_is_400_on_file(manager_api):
    response = manager_api.post(DATASETS, {"name": "api-upload"}, format="multipart")
    assert response.status_code == 400
    assert response.json() == {"file": ["This field is required."]}


def test_an_upload_as_json_is_415(manager_api):
    response = manager_api.post(DATASETS, {"name": "api-upload", "file": "x"}, format="json")
    assert response.status_code == 415
    assert rows() == (0, 0)


# --- starting a run -----------------------------------------------------------------------------


def test_a_run_started_with_only_a_dataset_and_model_trains_at_the_engine_defaults(
    manager_api, manager, model_dir
):
    dataset = colour_dataset(name="colours")
    response = manager_api.post(RUNS, {"dataset": "colours", "base_model": model_dir})
    assert response.status_code == 201, response.content
    run = FineTuneRun.objects.get()
    body = response.json()
    assert (body["id"], body["status"], body["dataset"]) == (run.pk, "queued", "colours")
    assert body["hyperparameters"] == TrainConfig().as_dict() == run.hyperparameters
    assert (run.dataset, run.created_by, run.status) == (dataset, manager, RunStatus.QUEUED)
    task = DBTaskResult.objects.get()
    assert task.queue_name == "gpu" and task.args_kwargs["kwargs"] == {"run_id": run.pk}


def test_run_settings_are_json_values(manager_api, model_dir):
    colour_dataset(name="colours")
    body = {
        "dataset": "colours",
        "base_model": model_dir,
        "name": "api-run",
        "rank": 8,
        "learning_rate": 0.001,
        "max_steps": 30,
        "scheduler": "linear",
    }
    response = manager_api.post(RUNS, body)
    assert response.status_code == 201, response.content
    run = FineTuneRun.objects.get()
    expected = TrainConfig(rank=8, learning_rate=0.001, max_steps=30, scheduler="linear")
    assert (run.name, run.hyperparameters) == ("api-run", expected.as_dict())
    assert run.hyperparameters["alpha"] == 16  # left out: 2 × rank


def test_every_bad_setting_is_named_with_its_label_and_nothing_is_queued(manager_api, model_dir):
    colour_dataset(name="colours")
    body = {"dataset": "colours", "base_model": model_dir, "rank": 0, "warmup_ratio": 1.5}
    response = manager_api.post(RUNS, body)
    assert response.status_code == 400
    assert response.json() == {
        "rank": [MUST_BE_POSITIVE.format(name="Rank", value=0)],
        "warmup_ratio": ["Warmup ratio must be in [0, 1), got 1.5"],
    }
    assert not FineTuneRun.objects.exists() and not DBTaskResult.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"dataset": "no-such-set"}, "dataset", "Select a valid choice"),
        ({"base_model": "/no/such/model"}, "base_model", "neither a packaged model"),
        ({"rank": "many"}, "rank", "Enter a whole number."),
        ({"scheduler": "sawtooth"}, "scheduler", "Select a valid choice"),
    ],
)
def test_bad_run_input_is_400_naming_the_field(manager_api, model_dir, body, field, message):
    colour_dataset(name="colours")
    response = manager_api.post(RUNS, {"dataset": "colours", "base_model": model_dir, **body})
    assert response.status_code == 400
    errors = response.json()
    assert list(errors) == [field]
    assert message in errors[field][0]
    assert not FineTuneRun.objects.exists()


def test_a_dataset_with_lint_errors_needs_force(manager_api, model_dir):
    colour_dataset(
        name="colours",
        lint_errors=1,
        lint_report=[{"severity": "error", "code": "empty-turn", "lines": [3], "message": "x"}],
    )
    body = {"dataset": "colours", "base_model": model_dir}
    refused = manager_api.post(RUNS, body)
    assert refused.status_code == 400
    assert "1 lint error(s)" in refused.json()["dataset"][0]
    assert not FineTuneRun.objects.exists()
    assert manager_api.post(RUNS, {**body, "force": True}).status_code == 201


def test_a_run_body_that_is_not_an_object_is_400(manager_api):
    response = manager_api.post(RUNS, ["colours"])
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": [NOT_AN_OBJECT.format(kind="list")]}


def test_a_form_encoded_run_is_415(manager_api, model_dir):
    colour_dataset(name="colours")
    body = {"dataset": "colours", "base_model": model_dir}
    assert manager_api.post(RUNS, body, format="multipart").status_code == 415
    assert not FineTuneRun.objects.exists()
