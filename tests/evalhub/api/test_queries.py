"""List endpoints cost a fixed number of queries however many rows a page holds."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import factories as f


def _grow(world, count: int) -> None:
    """``count`` more judged comparisons in the world's study, rated by the expert, and as many
    more runs (each with its dataset), systems and studies."""
    for _ in range(count):
        f.SystemFactory(run=f.FineTuneRunFactory(created_by=world.manager), kind="adapter")
        f.StudyFactory(created_by=world.manager).systems.set([world.base, world.adapter])
        prompt = f.PromptFactory(dataset=world.study.run.dataset)
        comparison = f.ComparisonFactory(
            study=world.study,
            prompt=prompt,
            output_a=f.OutputFactory(system=world.base, prompt=prompt),
            output_b=f.OutputFactory(system=world.adapter, prompt=prompt),
        )
        assignment = f.AssignmentFactory(
            comparison=comparison, rater=world.expert, left_output=comparison.output_a
        )
        f.JudgmentFactory(assignment=assignment)


def _queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize(
    ("role", "path"),
    [
        ("expert", "/api/assignments/"),
        ("manager", "/api/comparisons/"),
        ("manager", "/api/judgments/"),
        ("manager", "/api/studies/"),
        ("manager", "/api/systems/"),
        ("manager", "/api/runs/"),
        ("manager", "/api/datasets/"),
    ],
)
def test_list_query_count_does_not_grow_with_rows(world, login, role, path):
    client = login(getattr(world, role))
    _grow(world, 2)
    few = _queries(client, path)
    _grow(world, 8)
    assert _queries(client, path) == few
