"""The dataset upload and detail pages."""

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape

from evalhub.forms import datasets as dataset_forms
from tests.factories import DatasetFactory, ExampleFactory
from tests.trainer.datasets.helpers import distinct_records
from trainer.datasets.errors import MISSING_TABLE_COLUMN, NOT_TEXT
from trainer.models import Dataset, Example

NOISY = Path(__file__).resolve().parents[3] / "trainer" / "demo_data" / "noisy.jsonl"
UPLOAD = reverse("dataset_upload")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "uploads"
    return settings.MEDIA_ROOT


def jsonl(records, name="data.jsonl") -> SimpleUploadedFile:
    body = "".join(json.dumps(r) + "\n" for r in records).encode()
    return SimpleUploadedFile(name, body, content_type="application/octet-stream")


def form(file, **overrides):
    data = {
        "file": file,
        "name": "upload-test",
        "format": "auto",
        "split": "0.8,0.1,0.1",
        "seed": "0",
        "prompt_column": "prompt",
        "response_column": "response",
    }
    return {**data, **overrides}


def rows() -> tuple[int, int]:
    return Dataset.objects.count(), Example.objects.count()


@pytest.mark.django_db
@pytest.mark.parametrize("url", [UPLOAD, "/datasets/some-name/"])
def test_anonymous_users_are_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("method", ["get", "post"])
def test_experts_may_not_upload(expert_client, method):
    response = getattr(expert_client, method)(UPLOAD)
    assert response.status_code == 403
    assert rows() == (0, 0)


def test_experts_may_not_see_a_dataset(expert_client):
    DatasetFactory(name="secret")
    assert expert_client.get("/datasets/secret/").status_code == 403


def test_the_upload_page_is_a_real_multipart_form(manager_client):
    response = manager_client.get(UPLOAD)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'method="post" enctype="multipart/form-data"' in html
    for field in ("file", "name", "format", "split", "seed", "strict"):
        assert f'name="{field}"' in html


def test_a_clean_upload_is_stored_and_shown(manager_client, manager, media_root):
    response = manager_client.post(UPLOAD, form(jsonl(distinct_records(30)), seed="4"))
    assert response.status_code == 302
    assert response["Location"] == "/datasets/upload-test/"
    dataset = Dataset.objects.get(name="upload-test")
    assert (dataset.seed, dataset.created_by, dataset.source_filename) == (4, manager, "data.jsonl")
    assert dataset.examples.count() == 30
    assert (media_root / "datasets" / "upload-test" / "data.jsonl").is_file()
    assert list((media_root / "datasets" / ".incoming").iterdir()) == []
    page = manager_client.get(response["Location"]).content.decode()
    assert "<td>train</td><td>24</td>" in page
    assert "<td>validation</td><td>3</td>" in page
    assert "too-few-examples" in page
    first = dataset.examples.filter(split="train").order_by("index").first()
    assert first.messages[0]["content"] in page


def test_a_refused_upload_shows_the_report_and_stores_nothing(manager_client, media_root):
    noisy = SimpleUploadedFile("noisy.jsonl", NOISY.read_bytes())
    response = manager_client.post(UPLOAD, form(noisy))
    assert response.status_code == 422
    html = response.content.decode()
    assert "refused: 5 lint error(s); nothing was stored" in html
    assert "<code>split-leakage</code>" in html and '<td class="lines">2, 30</td>' in html
    assert "<code>near-duplicate</code>" in html and '<td class="lines">17, 18</td>' in html
    assert rows() == (0, 0)
    assert not (media_root / "datasets" / "upload-test").exists()


def test_strict_refuses_warnings(manager_client):
    records = distinct_records(20)
    records.append(records[0])
    response = manager_client.post(UPLOAD, form(jsonl(records), strict="on"))
    assert response.status_code == 422
    assert "exact-duplicate" in response.content.decode()
    assert rows() == (0, 0)


def test_malformed_files_answer_400_naming_the_uploaded_file_and_line(manager_client):
    bad = SimpleUploadedFile("mine.jsonl", b'{"messages": []}\n{"messages": [\n')
    response = manager_client.post(UPLOAD, form(bad))
    assert response.status_code == 400
    assert "mine.jsonl: line 2: broken JSON" in response.content.decode()
    assert rows() == (0, 0)


@pytest.mark.parametrize(
    ("overrides", "field_error"),
    [
        ({"split": "0.9,0.2,0.1"}, "split ratios must sum to 1"),
        ({"name": "not a slug"}, "Enter a valid"),
        ({"name": "upload"}, "is reserved"),
        ({"format": "yaml"}, "Select a valid choice"),
    ],
)
def test_bad_form_input_answers_400(manager_client, overrides, field_error):
    response = manager_client.post(UPLOAD, form(jsonl(distinct_records(3)), **overrides))
    assert response.status_code == 400
    assert field_error in response.content.decode()
    assert rows() == (0, 0)


def test_a_taken_name_answers_400(manager_client):
    DatasetFactory(name="upload-test")
    response = manager_client.post(UPLOAD, form(jsonl(distinct_records(3))))
    assert response.status_code == 400
    assert "already exists" in response.content.decode()
    assert rows() == (1, 0)


def test_the_detail_page_shows_counts_report_and_examples(manager_client):
    dataset = DatasetFactory(
        name="shown",
        lint_report=[
            {"code": "near-duplicate", "severity": "warning", "message": "m", "lines": [4, 9]}
        ],
    )
    ExampleFactory(dataset=dataset, split="train")
    ExampleFactory(
        dataset=dataset, split="test", messages=[{"role": "user", "content": "<b>x</b>"}]
    )
    html = manager_client.get("/datasets/shown/").content.decode()
    assert "<td>train</td><td>1</td>" in html and "<td>test</td><td>1</td>" in html
    assert "<td>validation</td><td>0</td>" in html
    assert '<td class="lines">4, 9</td>' in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html  # example text is escaped


def test_unknown_dataset_is_404(manager_client):
    assert manager_client.get("/datasets/nope/").status_code == 404


def test_the_list_links_to_upload_and_detail(manager_client):
    DatasetFactory(name="listed")
    html = manager_client.get(reverse("dataset_list")).content.decode()
    assert 'href="/datasets/upload/"' in html
    assert 'href="/datasets/listed/"' in html


def test_the_list_shows_examples_per_split_read_as_the_api_reads_them(manager_client):
    dataset = DatasetFactory(name="counted")
    for split in ("train", "train", "feedback", "test"):
        ExampleFactory(dataset=dataset, split=split)
    html = manager_client.get(reverse("dataset_list")).content.decode()
    assert "<td>4 (2 / 0 / 1 / 1)</td>" in html
    api = manager_client.get("/api/datasets/").json()["results"][0]
    assert (api["example_count"], api["train_count"], api["test_count"]) == (4, 2, 1)
    assert (api["feedback_count"], api["kind"]) == (1, "examples")


# The layouts of issue 15 through the upload page.


def parquet_upload(columns: dict[str, list], name: str = "data.parquet") -> SimpleUploadedFile:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), buffer)
    return SimpleUploadedFile(name, buffer.getvalue().to_pybytes())


@pytest.mark.django_db
def test_a_parquet_upload_with_named_fields_is_stored(manager_client, media_root):
    questions = [r["messages"][0]["content"] for r in distinct_records(5)]
    answers = [r["messages"][1]["content"] for r in distinct_records(5)]
    upload = parquet_upload({"q": questions, "a": answers})
    response = manager_client.post(UPLOAD, form(upload, prompt_field="q", response_field="a"))
    assert response.status_code == 302
    assert Dataset.objects.get(name="upload-test").format == "parquet/fields"
    assert (media_root / "datasets" / "upload-test" / "data.parquet").is_file()


@pytest.mark.django_db
def test_a_parquet_upload_without_the_named_columns_answers_400(manager_client):
    upload = parquet_upload({"q": ["a?"], "a": ["b"]})
    response = manager_client.post(UPLOAD, form(upload, prompt_field="question"))
    assert response.status_code == 400 and rows() == (0, 0)
    detail = MISSING_TABLE_COLUMN.format(column="question", columns=["q", "a"])
    assert escape(f"data.parquet: row 1: {detail}") in response.content.decode()


@pytest.mark.django_db
def test_a_file_neither_text_nor_parquet_is_refused(manager_client):
    upload = SimpleUploadedFile("data.parquet", b"PK\x03\x04\x00\x00" + bytes(range(256)) * 8)
    response = manager_client.post(UPLOAD, form(upload))
    assert response.status_code == 400 and rows() == (0, 0)
    assert escape(NOT_TEXT.format(offset=4)) in response.content.decode()


@pytest.mark.django_db
def test_an_upload_over_the_size_limit_is_refused(manager_client, monkeypatch):
    monkeypatch.setattr(dataset_forms, "MAX_UPLOAD_MB", 0)
    response = manager_client.post(UPLOAD, form(jsonl(distinct_records(3))))
    assert response.status_code == 400 and rows() == (0, 0)
    assert "the upload takes at most 0 MB" in response.content.decode()


@pytest.mark.django_db
def test_the_detail_page_shows_how_many_preference_pairs_it_holds(manager_client):
    records = [
        {
            "chosen": f"\n\nHuman: Q{n}?\n\nAssistant: good {n}",
            "rejected": f"\n\nHuman: Q{n}?\n\nAssistant: bad {n}",
        }
        for n in range(3)
    ]
    assert manager_client.post(UPLOAD, form(jsonl(records))).status_code == 302
    html = manager_client.get(reverse("dataset_detail", args=["upload-test"])).content.decode()
    assert '<td class="pair-count">3 ' in html
    api = manager_client.get("/api/datasets/").json()
    [row] = api["results"] if isinstance(api, dict) else api
    assert row["pair_count"] == 3
