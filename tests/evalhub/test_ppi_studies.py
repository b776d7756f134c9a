"""The prediction-powered interval through the selector, the study page, the report and the
manager API; experts are refused wherever it appears."""

import random

import pytest
from django.test import Client
from django.urls import reverse

from evalhub.models import Assignment, Output, Study
from evalhub.reports.build import report_build
from evalhub.reports.render import render_html
from evalhub.selectors.studies import REASON_NO_SIGNAL, ppi_block, study_monitored_pair
from evalhub.services.judgments import judgment_submit
from tests.evalhub.rating_fixtures import open_study
from tests.factories import ManagerFactory

pytestmark = pytest.mark.django_db
PROMPTS = 40
JUDGED = 24


def scored_study() -> Study:
    """An open study of 40 prompts whose outputs carry ROUGE-L; the experts side with the
    metric on the first 24 comparisons (all judgments in), the rest are not judged."""
    study, _, outputs = open_study(prompts=PROMPTS)
    rng = random.Random(1)
    for output in Output.objects.filter(system__in=outputs.systems):
        output.metrics = {"rougeL": rng.random()}
        output.save(update_fields=["metrics"])
    adapter, _ = study_monitored_pair(study=study)
    comparisons = sorted(
        {a.comparison_id for a in Assignment.objects.filter(comparison__study=study)}
    )
    for assignment in Assignment.objects.filter(
        comparison_id__in=comparisons[:JUDGED]
    ).select_related("left_output", "comparison__output_a", "comparison__output_b"):
        c = assignment.comparison
        ours, theirs = (
            (c.output_a, c.output_b)
            if c.output_a.system_id == adapter.pk
            else (c.output_b, c.output_a)
        )
        adapter_won = ours.metrics["rougeL"] > theirs.metrics["rougeL"]
        winner = ours if adapter_won else theirs
        choice = "a" if assignment.left_output_id == winner.pk else "b"
        judgment_submit(assignment=assignment, rater=assignment.rater, choice=choice)
    return study


def test_the_block_combines_complete_comparisons_with_the_signal_on_the_rest():
    block = ppi_block(study=scored_study())
    assert block["reason"] is None
    assert (block["signal"], block["labelled"], block["unlabelled"]) == (
        "rougeL",
        JUDGED,
        PROMPTS - JUDGED,
    )
    assert block["signal_correlation"] > 0.5
    assert block["width_ratio"] < 1
    low, high = block["interval"]["low"], block["interval"]["high"]
    assert low <= block["estimate"] <= high


def test_without_metrics_the_block_says_why():
    study, _, _ = open_study(prompts=12)
    block = ppi_block(study=study)
    assert block["reason"] == REASON_NO_SIGNAL and block["signal"] is None


def test_the_study_page_report_and_api_show_it_to_managers():
    study = scored_study()
    client = Client()
    client.force_login(ManagerFactory())
    page = client.get(reverse("study_detail", args=[study.pk]))
    assert b"prediction-powered" in page.content and b"Experts alone" in page.content
    report = report_build(study, include_judgments=False, resamples=50, bt_resamples=20)
    assert report["ppi"]["labelled"] == JUDGED
    html = render_html(report)
    assert 'id="ppi"' in html and 'data-key="ppi.interval"' in html
    assert 'data-key="ppi.expert_interval"' in html
    detail = client.get(f"/api/studies/{study.pk}/").json()
    assert detail["ppi"]["interval"] == pytest.approx(report["ppi"]["interval"])


def test_experts_are_refused_wherever_it_appears():
    study = scored_study()
    expert = Assignment.objects.filter(comparison__study=study).first().rater
    client = Client()
    client.force_login(expert)
    for path in (
        reverse("study_detail", args=[study.pk]),
        f"/api/studies/{study.pk}/",
        reverse("study_analysis", args=[study.pk]),
        reverse("study_report", args=[study.pk, "json"]),
        f"/api/studies/{study.pk}/report/",
    ):
        assert client.get(path).status_code == 403, path
