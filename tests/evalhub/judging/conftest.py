"""Fixtures of the judge tests."""

import pytest

from tests.factories import ComparisonFactory, StudyFactory


@pytest.fixture
def study():
    """A study of two comparisons, what a judge run asks about (a test file may define its own)."""
    study = StudyFactory()
    ComparisonFactory(study=study)
    ComparisonFactory(study=study)
    return study
