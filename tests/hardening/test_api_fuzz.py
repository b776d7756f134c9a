"""The REST API fuzzed from its own OpenAPI schema with schemathesis, in-process against the
WSGI application (no network), as each role: anonymous, expert and manager.

Whatever schemathesis generates (valid and invalid bodies, query strings, path values; half the
time the path names objects that exist), the API never answers 5xx, an anonymous caller gets
nothing but 401 (or 400 from the token endpoint), and an expert never sees a manager endpoint,
another rater's token or comment, or any system, run, model or dataset name.

EVALHUB_FUZZ_EXAMPLES (default 8) sets the examples per operation and role: 23 operations × 3
roles × 8 runs in well under a minute on two shared cores.
"""

import json
import os

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalhub.models import Assignment, StudyStatus
from evalhub.services.judgments import judgment_submit
from evalhub.services.studies import study_create, study_set_status
from evalhub.wsgi import application
from tests.factories import (
    BaseModelFactory,
    DatasetFactory,
    ExpertFactory,
    FineTuneRunFactory,
    ManagerFactory,
    OutputFactory,
    PromptFactory,
    SystemFactory,
)

pytestmark = pytest.mark.django_db
EXAMPLES = int(os.environ.get("EVALHUB_FUZZ_EXAMPLES", "8"))
SECRETS = ["gecko-13b", "ibis-run", "adapter:ibis", "base:gecko", "heron-set"]
OTHERS_COMMENT = "the other rater's private note"
MANAGER_ONLY = ("/api/comparisons", "/api/datasets", "/api/judgments", "/api/runs")
MANAGER_ONLY += ("/api/studies", "/api/systems")


@pytest.fixture
def keep_test_connection():
    """Calling the WSGI application directly, as schemathesis does, would close the database
    connection at the end of each request, and with it the test's transaction on PostgreSQL;
    Django's own test client disconnects the same handlers around its requests."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(keep_test_connection):
    model = BaseModelFactory(name=SECRETS[0], source=SECRETS[0])
    dataset = DatasetFactory(name=SECRETS[4])
    run = FineTuneRunFactory(name=SECRETS[1], dataset=dataset, base_model=model)
    adapter = SystemFactory(name=SECRETS[2], kind="adapter", run=run)
    base = SystemFactory(name=SECRETS[3], kind="base", base_model=model)
    for i in range(3):
        prompt = PromptFactory(dataset=dataset)
        OutputFactory(system=base, prompt=prompt, text=f"reply {i}")
        OutputFactory(system=adapter, prompt=prompt, text=f"another reply {i}")
    expert, other, manager = ExpertFactory(), ExpertFactory(), ManagerFactory()
    study = study_create(
        name="Fuzzed study",
        systems=[base, adapter],
        raters=[expert, other],
        run=run,
        criteria=["accuracy"],
        seed=2,
    )
    study_set_status(study=study, status=StudyStatus.OPEN)
    theirs = list(Assignment.objects.filter(rater=other))
    for a in theirs:
        judgment_submit(assignment=a, rater=other, choice="a", comment=OTHERS_COMMENT)
    return {
        "ids": {"id": [study.pk, run.pk, dataset.pk, base.pk, adapter.pk]},
        "expert": expert,
        "manager": manager,
        "mine": [a.token for a in Assignment.objects.filter(rater=expert)],
        "theirs": [a.token for a in theirs],
    }


def _schema():
    raw = SchemaGenerator().get_schema(request=None, public=True)
    schema = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(raw)))
    schema.app = application
    return schema


def _with_real_path(case, data, world):
    """Point the case's path at an object that exists, or leave it fuzzed."""
    if not case.path_parameters or not data.draw(st.booleans()):
        return case
    params = dict(case.path_parameters)
    if "id" in params:
        params["id"] = data.draw(st.sampled_from(world["ids"]["id"]))
    if "token" in params:
        params["token"] = data.draw(st.sampled_from(world["mine"] + world["theirs"]))
    case.path_parameters = params
    return case


def _check(role: str, case, response, world) -> None:
    path, status = case.path, response.status_code
    assert status < 500, (role, case.method, case.formatted_path, status)
    body = response.content.decode(errors="replace") if response.content else ""
    # A path value that a route does not match (a negative id for <int:pk>) is a 404 for all.
    unrouted = set() if str((case.path_parameters or {}).get("id", "0")).isdigit() else {404}
    if role == "anonymous":
        expected = {400, 429} if path == "/api/token/" else {401} | unrouted
        assert status in expected, (case.method, case.formatted_path, status)
    if role == "expert" and path.startswith(MANAGER_ONLY):
        assert status in {403} | unrouted, (case.method, case.formatted_path, status)
    if role == "expert":
        for leaked in [*SECRETS, OTHERS_COMMENT, *world["theirs"]]:
            assert leaked not in body, (leaked, case.method, case.formatted_path)


@pytest.mark.parametrize("role", ["anonymous", "expert", "manager"])
def test_the_api_survives_its_own_schema_as_each_role(world, role):
    headers = {}
    if role != "anonymous":
        user = world[role]
        headers["Authorization"] = f"Token {Token.objects.create(user=user).key}"
    operations = [result.ok() for result in _schema().get_all_operations()]
    assert len(operations) >= 20  # the schema covers the whole API

    for operation in operations:
        cache.clear()  # throttles count per test, not across operations

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(), data=st.data())
        def fuzz(case, data):
            case = _with_real_path(case, data, world)
            # Our credentials win over anything generated for the security schemes.
            sent = {**(case.headers or {}), **headers}
            if role == "anonymous":
                sent.pop("Authorization", None)
            response = case.call(headers=sent, cookies={})
            _check(role, case, response, world)

        fuzz()


@pytest.mark.parametrize("path", ["/api/comparisons/", "/api/judgments/", "/api/assignments/"])
def test_a_study_filter_beyond_any_id_is_a_400_naming_it_not_a_500(world, path):
    """Found by the fuzzing above: SQLite cannot bind an integer over 2**63 - 1."""
    client = APIClient()
    client.force_login(world["manager"])
    response = client.get(path, {"study": str(2**63)})
    assert response.status_code == 400
    assert "study" in response.json()
    assert client.get(path, {"study": str(2**63 - 1)}).status_code == 200
