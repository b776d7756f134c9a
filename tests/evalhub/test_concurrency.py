"""Many raters submitting at once, each from its own thread with its own database connection,
through judgment_submit: every verdict is stored once, none is lost or doubled."""

import threading

import pytest
from django.db import connection

from evalhub.models import Assignment, Judgment
from evalhub.services.judgments import judgment_submit
from tests.evalhub.rating_fixtures import open_study

RATERS = 8
CHOICES = ("a", "b", "tie", "both_bad")


@pytest.mark.django_db(transaction=True)
def test_many_raters_submitting_at_once_each_get_every_verdict_stored():
    if connection.vendor == "sqlite":
        # The SQLite test database is in memory with a shared cache, where a second writer
        # gets "table is locked" at once instead of waiting as a WAL file database does.
        pytest.skip("concurrent writers need PostgreSQL; the suite's PostgreSQL leg runs this")
    study, raters, _ = open_study(prompts=6, raters=RATERS, overlap=RATERS)
    work = {
        rater.pk: list(Assignment.objects.filter(rater=rater).order_by("pk")) for rater in raters
    }
    barrier = threading.Barrier(RATERS)
    errors = []

    def rate(rater) -> None:
        try:
            barrier.wait()
            for number, assignment in enumerate(work[rater.pk]):
                choice = CHOICES[(rater.pk + number) % len(CHOICES)]
                # A double click: the same verdict twice must stay one judgment, no revision.
                for _ in range(2):
                    judgment_submit(assignment=assignment, rater=rater, choice=choice)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=rate, args=(rater,)) for rater in raters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    expected = {
        assignment.pk: CHOICES[(rater.pk + number) % len(CHOICES)]
        for rater in raters
        for number, assignment in enumerate(work[rater.pk])
    }
    stored = dict(
        Judgment.objects.filter(assignment__comparison__study=study).values_list(
            "assignment_id", "choice"
        )
    )
    assert stored == expected
    assert not Judgment.objects.filter(revisions__gt=0).exists()
