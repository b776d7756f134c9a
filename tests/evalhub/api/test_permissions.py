"""Permission matrix: every role × every endpoint and method × the expected status.

Columns: anonymous, expert (owns ``{mine}``), other expert (owns ``{theirs}``), manager.
Managers see everything through the unblinded endpoints; ``/api/assignments/`` is each caller's
own queue, so another rater's token is a 404 for everyone but its rater."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from evalhub.models import Judge
from tests.trainer.datasets.helpers import distinct_records
from tests.trainer.run_fixtures import colour_dataset
from tests.trainer.worker_support import DATABASE_TASKS
from trainer.models import Dataset, FineTuneRun

ANON, EXPERT, OTHER, MANAGER = "anonymous", "expert", "other_expert", "manager"
ROLES = (ANON, EXPERT, OTHER, MANAGER)
MISSING = 987654321

# (method, path template, body, {role: status})
MATRIX = [
    ("get", "/api/", None, (401, 200, 200, 200)),
    ("get", "/api/datasets/", None, (401, 403, 403, 200)),
    ("get", "/api/datasets/{dataset}/", None, (401, 403, 403, 200)),
    ("get", f"/api/datasets/{MISSING}/", None, (401, 403, 403, 404)),
    # The upload reads multipart only: this JSON body is a 415, for managers alone.
    ("post", "/api/datasets/", {"name": "x"}, (401, 403, 403, 415)),
    ("delete", "/api/datasets/{dataset}/", None, (401, 403, 403, 405)),
    ("get", "/api/runs/", None, (401, 403, 403, 200)),
    ("get", "/api/runs/{run}/", None, (401, 403, 403, 200)),
    ("post", "/api/runs/", {"name": "x"}, (401, 403, 403, 400)),
    ("delete", "/api/runs/{run}/", None, (401, 403, 403, 405)),
    # The run has no adapter yet: a manager learns so with a 404.
    ("get", "/api/runs/{run}/adapter/", None, (401, 403, 403, 404)),
    ("get", f"/api/runs/{MISSING}/adapter/", None, (401, 403, 403, 404)),
    ("post", "/api/runs/{run}/adapter/", {}, (401, 403, 403, 405)),
    ("get", "/api/systems/", None, (401, 403, 403, 200)),
    ("get", "/api/systems/{system}/", None, (401, 403, 403, 200)),
    ("patch", "/api/systems/{system}/", {"name": "x"}, (401, 403, 403, 405)),
    ("get", "/api/studies/", None, (401, 403, 403, 200)),
    ("get", "/api/studies/{study}/", None, (401, 403, 403, 200)),
    ("get", f"/api/studies/{MISSING}/", None, (401, 403, 403, 404)),
    ("post", "/api/studies/", {}, (401, 403, 403, 400)),
    ("delete", "/api/studies/{study}/", None, (401, 403, 403, 405)),
    ("post", "/api/studies/{study}/status/", {"status": "paused"}, (401, 403, 403, 200)),
    ("get", "/api/studies/{study}/status/", None, (401, 403, 403, 405)),
    ("post", f"/api/studies/{MISSING}/status/", {"status": "open"}, (401, 403, 403, 404)),
    ("post", "/api/studies/{study}/raters/", {"raters": ["nobody"]}, (401, 403, 403, 400)),
    ("get", "/api/studies/{study}/report/", None, (401, 403, 403, 200)),
    ("get", "/api/studies/{study}/report/?format=csv", None, (401, 403, 403, 200)),
    ("get", f"/api/studies/{MISSING}/report/", None, (401, 403, 403, 404)),
    ("post", "/api/studies/{study}/report/", {}, (401, 403, 403, 405)),
    ("get", "/api/comparisons/", None, (401, 403, 403, 200)),
    ("get", "/api/comparisons/?study={study}", None, (401, 403, 403, 200)),
    ("get", "/api/comparisons/{comparison}/", None, (401, 403, 403, 200)),
    ("get", f"/api/comparisons/{MISSING}/", None, (401, 403, 403, 404)),
    ("get", "/api/judgments/", None, (401, 403, 403, 200)),
    ("get", "/api/judgments/{judgment}/", None, (401, 403, 403, 200)),
    ("delete", "/api/judgments/{judgment}/", None, (401, 403, 403, 405)),
    ("get", "/api/assignments/", None, (401, 200, 200, 200)),
    ("get", "/api/assignments/{mine}/", None, (401, 200, 404, 404)),
    ("get", "/api/assignments/{theirs}/", None, (401, 404, 200, 404)),
    ("get", "/api/assignments/no-such-token/", None, (401, 404, 404, 404)),
    ("delete", "/api/assignments/{mine}/", None, (401, 405, 405, 405)),
    ("get", "/api/assignments/{theirs}/judgment/", None, (401, 404, 200, 404)),
    ("put", "/api/assignments/{mine}/judgment/", {"choice": "a"}, (401, 201, 404, 404)),
    (
        "put",
        "/api/assignments/{mine}/judgment/",
        {"choice": "skip", "flag_reason": "cut off"},
        (401, 201, 404, 404),
    ),
    ("put", "/api/assignments/{theirs}/judgment/", {"choice": "a"}, (401, 404, 200, 404)),
    # A better answer goes with the rater's own judgment only, like every other field.
    (
        "put",
        "/api/assignments/{mine}/judgment/",
        {"choice": "a", "correction": "Rest and fluids."},
        (401, 201, 404, 404),
    ),
    (
        "put",
        "/api/assignments/{theirs}/judgment/",
        {"choice": "b", "correction": "Rest and fluids."},
        (401, 404, 200, 404),
    ),
    # An unsupported method is refused before any lookup: 405 for any token, so no leak.
    ("post", "/api/assignments/{mine}/judgment/", {"choice": "a"}, (401, 405, 405, 405)),
    ("delete", "/api/assignments/{theirs}/judgment/", None, (401, 405, 405, 405)),
    ("get", "/api/preference-sets/", None, (401, 403, 403, 200)),
    ("get", f"/api/preference-sets/{MISSING}/", None, (401, 403, 403, 404)),
    ("get", f"/api/preference-sets/{MISSING}/download/", None, (401, 403, 403, 404)),
    ("post", "/api/preference-sets/", {}, (401, 403, 403, 400)),
    ("delete", f"/api/preference-sets/{MISSING}/", None, (401, 403, 403, 405)),
    ("get", "/api/judges/", None, (401, 403, 403, 200)),
    ("get", "/api/judges/{judge}/", None, (401, 403, 403, 200)),
    ("get", f"/api/judges/{MISSING}/", None, (401, 403, 403, 404)),
    ("post", "/api/judges/", {}, (401, 403, 403, 400)),
    ("post", "/api/judges/", {"name": "matrix-local"}, (401, 403, 403, 201)),
    ("delete", "/api/judges/{judge}/", None, (401, 403, 403, 405)),
    ("get", "/api/judge-runs/", None, (401, 403, 403, 200)),
    ("get", "/api/judge-runs/?study={study}", None, (401, 403, 403, 200)),
    ("get", f"/api/judge-runs/{MISSING}/", None, (401, 403, 403, 404)),
    ("post", "/api/judge-runs/", {}, (401, 403, 403, 405)),
    ("post", "/api/studies/{study}/judge/", {}, (401, 403, 403, 202)),
    ("post", "/api/studies/{study}/judge/", {"judge": "nope"}, (401, 403, 403, 400)),
    ("post", f"/api/studies/{MISSING}/judge/", {}, (401, 403, 403, 404)),
    ("get", "/api/studies/{study}/judge/", None, (401, 403, 403, 405)),
    ("get", "/api/schema/", None, (401, 200, 200, 200)),
    ("get", "/api/docs/", None, (401, 200, 200, 200)),
    ("post", "/api/token/", {}, (400, 400, 400, 400)),
]


def _ids(world) -> dict[str, object]:
    run = world.study.run
    return {
        "dataset": run.dataset_id,
        "run": run.id,
        "system": world.base.id,
        "study": world.study.id,
        "comparison": world.comparison.id,
        "judgment": world.judgment.id,
        "judge": Judge.objects.get_or_create(name="matrix-judge")[0].id,
        "mine": world.mine.token,
        "theirs": world.theirs.token,
    }


def _user(world, role: str):
    return {ANON: None, EXPERT: world.expert, OTHER: world.other_expert, MANAGER: world.manager}[
        role
    ]


CASES = [
    pytest.param(method, path, body, role, expected[i], id=f"{role}-{method}-{path}")
    for method, path, body, expected in MATRIX
    for i, role in enumerate(ROLES)
]


@pytest.mark.parametrize(("method", "path", "body", "role", "status"), CASES)
def test_permission_matrix(world, login, method, path, body, role, status):
    client = login(_user(world, role))
    response = getattr(client, method)(path.format(**_ids(world)), body, format="json")
    assert response.status_code == status, response.content[:300]


def test_anonymous_api_calls_are_told_to_authenticate_with_a_token(api, world):
    response = api.get("/api/datasets/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize(
    ("role", "status"), [(ANON, 401), (EXPERT, 403), (OTHER, 403), (MANAGER, 201)]
)
def test_only_managers_upload_a_dataset_or_start_a_run(
    world, login, settings, tmp_path, role, status
):
    """Valid requests: a manager's are stored; anyone else's are refused before anything is
    read, and nothing is stored."""
    settings.MEDIA_ROOT = tmp_path / "uploads"
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")
    dataset = colour_dataset(name="colours")
    datasets, runs = Dataset.objects.count(), FineTuneRun.objects.count()
    client = login(_user(world, role))
    records = "".join(json.dumps(r) + "\n" for r in distinct_records(10)).encode()
    file = SimpleUploadedFile("data.jsonl", records)
    with override_settings(TASKS=DATABASE_TASKS):
        upload = client.post("/api/datasets/", {"file": file, "name": "x"}, format="multipart")
        start = client.post("/api/runs/", {"dataset": dataset.name, "base_model": str(tmp_path)})
    assert (upload.status_code, start.status_code) == (status, status), upload.content
    added = 1 if role == MANAGER else 0
    assert (Dataset.objects.count(), FineTuneRun.objects.count()) == (
        datasets + added,
        runs + added,
    )
