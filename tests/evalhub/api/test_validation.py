"""Malformed input is a 400 that names the offending field or parameter."""

import pytest


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/comparisons/?study=abc", "study"),
        ("/api/judgments/?study=-1", "study"),
    ],
)
def test_bad_manager_filters_are_400_naming_the_parameter(world, login, path, field):
    response = login(world.manager).get(path)
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize(("query", "field"), [("study=x", "study"), ("pending=maybe", "pending")])
def test_bad_assignment_filters_are_400_naming_the_parameter(world, login, query, field):
    response = login(world.expert).get(f"/api/assignments/?{query}")
    assert response.status_code == 400
    assert field in response.json()
