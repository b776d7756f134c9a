"""The study page's "Verdict details" card: the monitored pair's tie-aware probabilities,
both-bad rate, length-controlled win rate and agreement are the report's numbers for the same
study, without the judgments of a rater the gate leaves out, and say so while too few are in."""

import json

import pytest
from django.urls import reverse

from evalhub.models import Judgment, Study, StudyStatus
from evalhub.reports.build import report_build
from evalhub.reports.render import report_render
from evalhub.services.judgments import judgment_submit
from evalhub.services.studies import study_create, study_set_status
from tests.evalhub.rating_fixtures import run_with_outputs
from tests.evalhub.test_rater_gate import gated, quality_adapter  # noqa: F401  (gated: a fixture)
from tests.factories import ExpertFactory

pytestmark = pytest.mark.django_db


def _details(client, study) -> dict:
    response = client.get(reverse("study_detail", args=[study.pk]))
    assert response.status_code == 200
    # Through JSON, as the report's numbers are read.
    return json.loads(json.dumps(response.context["details"]))


def _report(study) -> dict:
    return json.loads(report_render(report_build(study, resamples=20, bt_resamples=5), "json"))


def test_the_card_shows_the_report_json_numbers_for_the_monitored_pair(
    gated,  # noqa: F811
    manager_client,
):
    details = _details(manager_client, gated)
    analysis = _report(gated)["analysis"]
    pair = (details["system"], details["opponent"])
    ties = next(p for p in analysis["ties"]["pairs"] if (p["system"], p["opponent"]) == pair)
    length = next(p for p in analysis["length_controlled"] if (p["system"], p["opponent"]) == pair)
    assert details["enough"]
    assert details["ties"] == ties
    assert details["length"] == length["estimate"]
    assert details["krippendorff_alpha"] == analysis["agreement"]["krippendorff_alpha"]
    assert details["fleiss_kappa"] == analysis["agreement"]["fleiss_kappa"]
    intervals = analysis["agreement_intervals"]
    assert details["krippendorff_alpha_interval"] == intervals["krippendorff_alpha"]
    assert details["fleiss_kappa_interval"] == intervals["fleiss_kappa"]


def test_the_card_leaves_out_the_judgments_of_a_gated_rater(gated, manager_client):  # noqa: F811
    details = _details(manager_client, gated)
    # ann and bob prefer the adapter on 9 of 12 items; the hasty rater always names the base.
    assert details["system"] == quality_adapter(gated)
    assert details["excluded"] == ["hasty"]
    assert (details["ties"]["n"], details["length"]["n"]) == (24, 24)
    assert details["length"]["win_rate"] == pytest.approx(0.75)
    # The two raters who count agree on every item.
    assert details["krippendorff_alpha"]["value"] == pytest.approx(1.0)
    html = manager_client.get(reverse("study_detail", args=[gated.pk])).content.decode()
    assert "Verdict details" in html
    assert "Leaves out the judgments of 1 rater the gate excludes" in html
    assert '<tr class="details-raw"><td>Win rate, raw</td><td class="n">75%</td>' in html


def test_the_card_follows_a_change_of_the_gate_at_once(gated, manager_client):  # noqa: F811
    assert _details(manager_client, gated)["ties"]["n"] == 24
    Study.objects.filter(pk=gated.pk).update(min_gold_accuracy=0, min_median_seconds=0)
    gated.refresh_from_db()
    details = _details(manager_client, gated)
    assert details["excluded"] == [] and details["ties"]["n"] == 36
    assert details["length"]["win_rate"] == pytest.approx(0.5)


def test_the_card_follows_a_revised_judgment(gated, manager_client):  # noqa: F811
    before = _details(manager_client, gated)["ties"]
    judgment = Judgment.objects.filter(
        assignment__comparison__study=gated,
        assignment__comparison__is_gold=False,
        assignment__rater__username="ann",
    ).first()
    judgment_submit(
        assignment=judgment.assignment, rater=judgment.assignment.rater, choice="both_bad"
    )
    after = _details(manager_client, gated)["ties"]
    assert (before["both_bad"], after["both_bad"]) == (0, 1)


def test_the_card_says_so_while_too_few_judgments_are_in(manager_client):
    outputs = run_with_outputs(prompts=12)
    study = study_create(
        name="Fresh",
        systems=outputs.systems,
        raters=[ExpertFactory(), ExpertFactory()],
        overlap=2,
        run=outputs.run,
    )
    study_set_status(study=study, status=StudyStatus.OPEN)
    details = _details(manager_client, study)
    assert not details["enough"]
    html = manager_client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert "Too few judgments for these details yet" in html
    assert "details-p-win" not in html
