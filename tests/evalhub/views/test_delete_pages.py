"""The delete confirmation pages of datasets, runs and studies."""

import pytest
from django.urls import reverse

from evalhub.models import Study
from evalhub.selectors.deletes import RUN_ACTIVE, STUDY_HAS_JUDGMENTS
from evalhub.selectors.rating import rater_next_assignment
from evalhub.services.judgments import judgment_submit
from tests.evalhub.rating_fixtures import open_study
from tests.factories import DatasetFactory, ExampleFactory, FineTuneRunFactory
from trainer.models import Dataset, FineTuneRun, RunStatus

pytestmark = pytest.mark.django_db


def test_the_detail_pages_link_their_delete_page(manager_client):
    study, _, outputs = open_study(prompts=1)
    pages = {
        reverse("study_detail", args=[study.pk]): reverse("study_delete", args=[study.pk]),
        reverse("run_detail", args=[outputs.run.pk]): reverse("run_delete", args=[outputs.run.pk]),
        reverse("dataset_detail", args=[outputs.run.dataset.name]): reverse(
            "dataset_delete", args=[outputs.run.dataset.name]
        ),
    }
    for page, delete in pages.items():
        assert f'href="{delete}"' in manager_client.get(page).content.decode()


def test_the_confirmation_lists_what_goes_and_deletes_nothing_on_get(manager_client):
    dataset = DatasetFactory(name="greetings")
    ExampleFactory.create_batch(3, dataset=dataset)
    response = manager_client.get(reverse("dataset_delete", args=["greetings"]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "3 examples" in html and "cannot be undone" in html
    assert '<form method="post">' in html
    assert Dataset.objects.filter(name="greetings").exists()


def test_posting_the_confirmation_deletes_and_goes_back_to_the_list(manager_client):
    DatasetFactory(name="greetings")
    response = manager_client.post(reverse("dataset_delete", args=["greetings"]))
    assert response.status_code == 302 and response["Location"] == reverse("dataset_list")
    assert not Dataset.objects.filter(name="greetings").exists()
    assert "Deleted dataset" in manager_client.get(response["Location"]).content.decode()


def test_a_study_with_judgments_shows_why_and_offers_no_delete_button(manager_client):
    study, (rater, _), _ = open_study(prompts=1)
    assignment = rater_next_assignment(study=study, rater=rater)
    judgment_submit(assignment=assignment, rater=rater, choice="a")
    url = reverse("study_delete", args=[study.pk])
    html = manager_client.get(url).content.decode()
    reason = STUDY_HAS_JUDGMENTS.format(name=study.name, count=1, s="")
    assert reason.replace("'", "&#x27;") in html
    assert '<form method="post">' not in html
    refused = manager_client.post(url)
    assert refused.status_code == 409
    assert reason.replace("'", "&#x27;") in refused.content.decode()
    assert Study.objects.filter(pk=study.pk).exists()


def test_a_running_run_is_refused_until_cancelled(manager_client):
    run = FineTuneRunFactory(status=RunStatus.RUNNING)
    response = manager_client.post(reverse("run_delete", args=[run.pk]))
    assert response.status_code == 409
    assert RUN_ACTIVE.format(status="running") in response.content.decode()
    assert FineTuneRun.objects.filter(pk=run.pk).exists()


def test_a_finished_run_is_deleted(manager_client):
    run = FineTuneRunFactory(status=RunStatus.FAILED)
    response = manager_client.post(reverse("run_delete", args=[run.pk]))
    assert response["Location"] == reverse("run_list")
    assert not FineTuneRun.objects.filter(pk=run.pk).exists()


@pytest.mark.parametrize("name", ["dataset_delete", "run_delete", "study_delete"])
def test_other_methods_than_get_and_post_are_not_allowed(manager_client, name):
    study, _, outputs = open_study(prompts=1)
    arg = {"dataset_delete": outputs.run.dataset.name, "run_delete": outputs.run.pk}.get(
        name, study.pk
    )
    assert manager_client.delete(reverse(name, args=[arg])).status_code == 405
