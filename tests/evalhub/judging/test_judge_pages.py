"""The study page's judge block and its "Run judge" button (managers only; the permission
matrix and the blinding crawl cover the other roles)."""

import pytest
from django.urls import reverse
from django.utils.html import escape

from evalhub.models import Judge, JudgeRun, JudgeVerdict
from evalhub.services.judging import NO_COMPARISONS, UNKNOWN_JUDGE, judge_create
from tests.evalhub.chat_peers import ok, scripted_server
from tests.factories import StudyFactory

pytestmark = pytest.mark.django_db


def test_the_button_offers_the_packaged_judge_before_any_is_defined(manager_client, study):
    page = manager_client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert f'action="{reverse("study_judge", args=[study.pk])}"' in page
    assert "smollm2-135m (local, packaged): not run yet" in page
    assert "Run judge" in page


def test_the_button_runs_an_http_judge_through_the_queue_and_the_page_shows_the_run(
    manager_client, study, django_capture_on_commit_callbacks
):
    with scripted_server(ok("A")) as server:
        judge_create(name="remote", backend="http", model="m", base_url=server.url)
        with django_capture_on_commit_callbacks(execute=True):
            response = manager_client.post(
                reverse("study_judge", args=[study.pk]), {"judge": "remote"}
            )
    assert response.status_code == 302
    run = JudgeRun.objects.get()
    assert (run.status, run.verdicts_done) == ("succeeded", 4)
    assert JudgeVerdict.objects.filter(judge__name="remote").count() == 4
    page = manager_client.get(response["Location"]).content.decode()
    assert "remote (http, m): 4 of 4 answered" in page
    assert "Judge remote queued on this study" in page


def test_a_second_click_while_the_run_waits_queues_nothing_more(manager_client, study):
    url = reverse("study_judge", args=[study.pk])
    manager_client.post(url, {})
    manager_client.post(url, {})
    assert JudgeRun.objects.filter(status="queued").count() == 1
    assert Judge.objects.get().name == "smollm2-135m"


def test_an_unknown_judge_or_a_study_without_comparisons_is_refused(manager_client, study):
    response = manager_client.post(reverse("study_judge", args=[study.pk]), {"judge": "nope"})
    assert response.status_code == 409
    message = escape(UNKNOWN_JUDGE.format(name="nope", known="smollm2-135m"))
    assert message in response.content.decode()
    empty = StudyFactory()
    response = manager_client.post(reverse("study_judge", args=[empty.pk]), {})
    assert response.status_code == 409
    assert escape(NO_COMPARISONS.format(study=empty.name)) in response.content.decode()
    assert not JudgeRun.objects.exists()
