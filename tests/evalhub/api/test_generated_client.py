"""The API as an integrator meets it: a Python client generated from the schema by
openapi-python-client (the most used generator; pinned in the dev extra), imported as generated,
and driven against a live server through the manager's and the expert's flows."""

import importlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiYamlRenderer

from evalhub.models import Assignment, Judgment, SystemKind
from tests.factories import (
    BaseModelFactory,
    ExpertFactory,
    FineTuneRunFactory,
    ManagerFactory,
    OutputFactory,
    PromptFactory,
    SystemFactory,
)
from tests.trainer.datasets.helpers import distinct_records
from tests.trainer.worker_support import DATABASE_TASKS
from trainer.models import Dataset, FineTuneRun, RunStatus

pytestmark = pytest.mark.django_db(transaction=True)  # the live server reads what the test wrote
PACKAGE = "evalhub_api_client"
SECRETS = ("okapi-7b", "okapi-tuned", "base:okapi", "adapter:okapi")
PASSWORD = "pw"  # the factories' password
# The README's settings file: the adapter zip (application/zip) read as bytes.
CLIENT_CONFIG = (
    Path(__file__).resolve().parents[3] / "evalhub" / "api" / "openapi-python-client.yaml"
)


def _generate(folder: Path) -> None:
    """The schema as ``manage.py spectacular`` writes it, then the README's generate command."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    (folder / "schema.yaml").write_bytes(OpenApiYamlRenderer().render(schema))
    command = [
        sys.executable,
        "-m",
        "openapi_python_client",
        "generate",
        "--path",
        "schema.yaml",
        "--output-path",
        PACKAGE,
        "--meta",
        "none",
        "--config",
        str(CLIENT_CONFIG),
        "--fail-on-warning",
    ]
    # The venv's ruff on PATH: the generator formats what it writes with it. A proxy that
    # answers nothing: the generator works offline (it fetches only for --url).
    env = os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "ALL_PROXY": "http://127.0.0.1:9",
    }
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ruff is not in PATH" not in done.stdout


@pytest.fixture
def generated(tmp_path) -> ModuleType:
    """The generated package, imported; ``generated.api.studies.studies_create`` and so on."""
    _generate(tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        package = importlib.import_module(PACKAGE)
        for module in ("api", "client", "models", "types"):
            importlib.import_module(f"{PACKAGE}.{module}")
        yield package
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _endpoint(package: ModuleType, path: str) -> ModuleType:
    return importlib.import_module(f"{package.__name__}.api.{path}")


@pytest.fixture
def world(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    model = BaseModelFactory(name=SECRETS[0], source=SECRETS[0])
    run = FineTuneRunFactory(name=SECRETS[1], base_model=model)
    base = SystemFactory(name=SECRETS[2], kind=SystemKind.BASE, base_model=model)
    adapter = SystemFactory(name=SECRETS[3], kind=SystemKind.ADAPTER, run=run)
    for i in range(6):
        prompt = PromptFactory(dataset=run.dataset)
        OutputFactory(system=base, prompt=prompt, text=f"first reply {i}")
        OutputFactory(system=adapter, prompt=prompt, text=f"second reply {i}")
    model_dir = tmp_path / "model"  # the base-model check's minimum; no worker ever loads it
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    (model_dir / "model.safetensors").write_bytes(b"")
    return {
        "manager": ManagerFactory(),
        "expert": ExpertFactory(),
        "systems": [base.pk, adapter.pk],
        "model_dir": str(model_dir),
    }


def _token(package: ModuleType, url: str, user) -> str:
    """The token endpoint needs no login: a plain ``Client`` calls it."""
    token_create = _endpoint(package, "token.token_create")
    body = package.models.AuthTokenRequest(username=user.username, password=PASSWORD)
    answer = token_create.sync(client=package.Client(base_url=url), body=body)
    assert answer is not None, "the token endpoint refused the credentials"
    return answer.token


def _as(package: ModuleType, url: str, user):
    token = _token(package, url, user)
    # openapi-python-client does not read security schemes: its AuthenticatedClient sends
    # "Bearer <token>" unless given the prefix that the schema's tokenAuth describes.
    return package.AuthenticatedClient(base_url=url, token=token, prefix="Token")


def _dataset_file(package: ModuleType):
    body = "".join(json.dumps(record) + "\n" for record in distinct_records(30)).encode()
    return package.types.File(payload=io.BytesIO(body), file_name="chat.jsonl")


def test_a_generated_client_drives_the_manager_and_expert_flows(generated, world, live_server):
    m = generated.models
    manager = _as(generated, live_server.url, world["manager"])
    expert_user = world["expert"]

    # Manager: a study over the two systems, the expert added as its rater, then opened.
    studies_create = _endpoint(generated, "studies.studies_create")
    study = studies_create.sync(
        client=manager,
        body=m.StudyCreateRequest(name="Tone study", systems=world["systems"], overlap=1),
    )
    assert isinstance(study, m.Study), study
    raters = _endpoint(generated, "studies.studies_raters_create").sync(
        id=study.id, client=manager, body=m.StudyRatersRequest(raters=[expert_user.username])
    )
    assert raters.assignments_created == 6
    opened = _endpoint(generated, "studies.studies_status_create").sync(
        id=study.id, client=manager, body=m.StudyStatusRequest(status=m.StudyStatusEnum.OPEN)
    )
    assert opened.status == m.StudyStatusEnum.OPEN
    listed = _endpoint(generated, "studies.studies_list").sync(client=manager)
    assert [s.name for s in listed.results] == ["Tone study"]
    systems = _endpoint(generated, "systems.systems_list").sync(client=manager)
    assert {s.name for s in systems.results} == {SECRETS[2], SECRETS[3]}

    # Manager: a dataset uploaded (multipart), and a run started on it (queued, never trained).
    uploaded = _endpoint(generated, "datasets.datasets_create").sync(
        client=manager,
        body=m.DatasetUploadRequest(file=_dataset_file(generated), name="chat-set", seed=3),
    )
    assert isinstance(uploaded, m.DatasetDetail), uploaded
    assert (uploaded.name, uploaded.example_count, uploaded.seed) == ("chat-set", 30, 3)
    datasets = _endpoint(generated, "datasets.datasets_list").sync(client=manager)
    assert "chat-set" in {d.name for d in datasets.results}
    with override_settings(TASKS=DATABASE_TASKS):
        started = _endpoint(generated, "runs.runs_create").sync(
            client=manager,
            body=m.RunStartRequest(
                dataset="chat-set", base_model=world["model_dir"], rank=8, max_steps=5
            ),
        )
    assert isinstance(started, m.RunDetail), started
    assert (started.status, started.dataset) == (m.RunStatusEnum.QUEUED, "chat-set")
    run = FineTuneRun.objects.get(pk=started.id)
    assert run.status == RunStatus.QUEUED and run.hyperparameters["rank"] == 8
    assert Dataset.objects.get(name="chat-set").created_by == world["manager"]

    # Expert: their queue, blind, and five judgments.
    expert = _as(generated, live_server.url, expert_user)
    queue = _endpoint(generated, "assignments.assignments_list").sync_detailed(
        client=expert, study=study.id, pending=True
    )
    assert queue.status_code == 200
    assert not any(secret.encode() in queue.content for secret in SECRETS)
    pending = queue.parsed.results
    assert len(pending) == 6
    judge = _endpoint(generated, "assignments.assignments_judgment_update")
    choices = [m.ChoiceEnum.A, m.ChoiceEnum.B, m.ChoiceEnum.TIE, m.ChoiceEnum.A, m.ChoiceEnum.B]
    for item, choice in zip(pending, choices, strict=False):
        answer = judge.sync_detailed(
            token=item.token, client=expert, body=m.JudgmentInputRequest(choice=choice)
        )
        assert answer.status_code == 201, answer.content
        assert answer.parsed.choice == choice
    assert Judgment.objects.filter(assignment__rater=expert_user).count() == 5
    left = _endpoint(generated, "assignments.assignments_list").sync(
        client=expert, study=study.id, pending=True
    )
    assert len(left.results) == 1

    # Expert: no report, no manager endpoint.
    report = _endpoint(generated, "studies.studies_report_retrieve").sync_detailed(
        id=study.id, client=expert
    )
    assert report.status_code == 403
    assert not any(secret.encode() in report.content for secret in SECRETS)
    assert _endpoint(generated, "runs.runs_list").sync_detailed(client=expert).status_code == 403
    assert Assignment.objects.filter(comparison__study_id=study.id).count() == 6
