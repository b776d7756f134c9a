"""The rater gate and rater quality in a study: the demo's case of a rater with 0 of 7 gold
items right at about one second per item is left out of the verdict by default, and the study
page, the API and every report format show the verdict with and without them."""

import csv
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from evalhub.models import Assignment, Study, StudyStatus
from evalhub.reports.build import report_build
from evalhub.reports.render import render_csv, render_html
from evalhub.selectors.rater_quality import rater_quality_block
from evalhub.selectors.studies import pair_ratings, study_gated_raters, study_sequential
from evalhub.services.judgments import judgment_submit
from evalhub.services.studies import (
    ERROR_MIN_GOLD_ACCURACY,
    ERROR_MIN_MEDIAN_SECONDS,
    StudyError,
    study_create,
    study_set_status,
)
from tests.evalhub.rating_fixtures import run_with_outputs
from tests.evalhub.test_studies import gold_items
from tests.factories import ExpertFactory

pytestmark = pytest.mark.django_db

HASTY_REASONS = ["0 of 7 gold items right (under 50%)", "median 1.0 s per item (under 3 s)"]


def _displayed(assignment: Assignment, storage_side: str) -> str:
    """The choice ("a" = left) that names the output stored on ``storage_side``."""
    return "a" if (storage_side == "a") == assignment.left_is_a else "b"


def _judge_all(study: Study, adapter, *, hasty: str) -> None:
    """ann and bob read carefully: gold right, the adapter better on items 0–8 of 12; the hasty
    rater always names the base and every gold item wrong, at one second each."""
    for a in Assignment.objects.filter(comparison__study=study).select_related(
        "comparison__output_a", "rater"
    ):
        comparison = a.comparison
        is_hasty = a.rater.username == hasty
        if comparison.is_gold:
            right = comparison.gold_answer
            side = {"a": "b", "b": "a"}[right] if is_hasty else right
        else:
            adapter_side = "a" if comparison.output_a.system_id == adapter.pk else "b"
            base_side = {"a": "b", "b": "a"}[adapter_side]
            number = int(comparison.prompt.messages[0]["content"].split()[-1].rstrip("?"))
            adapter_wins = number < 9
            side = base_side if is_hasty or not adapter_wins else adapter_side
        judgment_submit(
            assignment=a,
            rater=a.rater,
            choice=_displayed(a, side),
            time_on_task_ms=1000 if is_hasty else 8000,
        )


@pytest.fixture
def gated():
    outputs = run_with_outputs(prompts=12)
    raters = [ExpertFactory(username=n) for n in ("ann", "bob", "hasty")]
    study = study_create(
        name="Gate study",
        systems=outputs.systems,
        raters=raters,
        overlap=3,
        gold=gold_items(7),
        run=outputs.run,
        seed=4,
    )
    study_set_status(study=study, status=StudyStatus.OPEN)
    _judge_all(study, outputs.adapter, hasty="hasty")
    return study


def test_the_default_gate_leaves_out_a_rater_with_no_gold_right_at_a_second_an_item(gated):
    assert study_gated_raters(study=gated) == {"hasty": HASTY_REASONS}


def test_the_verdict_counts_only_the_raters_the_gate_keeps(gated):
    assert {r.rater for r in pair_ratings(study=gated)} == {"ann", "bob"}
    assert {r.rater for r in pair_ratings(study=gated, excluded=())} == {"ann", "bob", "hasty"}
    counted = study_sequential(study=gated)
    every = study_sequential(study=gated, excluded=())
    # Every comparison completes without the hasty rater's judgments: 12 of 2 judgments each.
    assert (counted.judgments, counted.units) == (24, 12)
    assert (every.judgments, every.units) == (36, 12)
    assert counted.estimate == pytest.approx(9 / 12)
    assert every.estimate == pytest.approx(18 / 36)


def test_a_gate_of_zero_counts_everyone(gated):
    Study.objects.filter(pk=gated.pk).update(min_gold_accuracy=0, min_median_seconds=0)
    gated.refresh_from_db()
    assert study_gated_raters(study=gated) == {}
    assert len(pair_ratings(study=gated)) == 36
    verdicts = rater_quality_block(study=gated)["pair"]
    assert verdicts["counted"] == verdicts["all"] and verdicts["all"]["judgments"] == 36
    assert verdicts["verdict_counted"] == verdicts["verdict_all"]


def test_the_report_counts_the_gated_verdict_and_shows_it_with_everyone(gated):
    report = report_build(gated, resamples=200, bt_resamples=20)
    pair = report["analysis"]["pairs"][0]
    assert (pair["system"], pair["n"], pair["win_rate"]) == (quality_adapter(gated), 24, 0.75)
    quality = report["rater_quality"]
    assert quality["excluded"] == ["hasty"]
    assert quality["gate"] == {
        "min_gold_accuracy": 0.5,
        "min_gold_judged": 3,
        "min_median_seconds": 3.0,
    }
    rows = {r["rater"]: r for r in quality["raters"]}
    assert rows["hasty"]["excluded"] and rows["hasty"]["reasons"] == HASTY_REASONS
    assert (rows["hasty"]["gold_correct"], rows["hasty"]["gold_judged"]) == (0, 7)
    assert rows["hasty"]["competence"] < 0.25 < rows["ann"]["competence"]
    assert rows["hasty"]["weight"] == 0.0
    verdicts = quality["pair"]
    assert verdicts["counted"]["win_rate"] == pytest.approx(0.75)
    assert verdicts["all"]["win_rate"] == pytest.approx(0.5)
    assert verdicts["counted"]["judgments"] == 24 and verdicts["all"]["judgments"] == 36
    # ann and bob agree on everything, so weighting them changes nothing.
    assert verdicts["weighted"]["win_rate"] == pytest.approx(0.75)
    assert verdicts["verdict_counted"] == report["sequential"]["verdict"]
    counted = {
        row["rater"]: row["counted"] for row in report["judgments"] if not _gold(report, row)
    }
    assert counted == {"ann": True, "bob": True, "hasty": False}
    # The per-rater table still describes the rater the gate left out.
    described = {r["rater"]: r for r in report["analysis"]["raters"]}
    assert described["hasty"]["gold_accuracy"]["value"] == 0.0


def quality_adapter(study: Study) -> str:
    return study.systems.get(kind="adapter").name


def _gold(report: dict, row: dict) -> bool:
    return next(c for c in report["comparisons"] if c["comparison"] == row["comparison"])["is_gold"]


def test_csv_and_html_show_who_counts_and_the_verdict_both_ways(gated):
    report = report_build(gated, resamples=200, bt_resamples=20)
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    hasty = [r for r in rows if r["rater"] == "hasty"]
    assert {r["counted"] for r in hasty} == {"False"}
    assert float(hasty[0]["rater_competence"]) < 0.25
    html = render_html(report)
    assert 'id="rater-quality"' in html
    assert "0 of 7 gold items right" in html
    assert "How to read this." in html
    assert 'data-key="rater_quality.pair.all.win_rate"' in html
    assert 'data-key="rater_quality.pair.weighted.win_rate"' in html


def test_the_study_page_flags_the_gated_rater_for_the_manager(gated, manager_client):
    page = manager_client.get(reverse("study_detail", args=[gated.pk])).content.decode()
    assert "<strong>hasty</strong> is left out of the verdict: " + "; ".join(HASTY_REASONS) in page
    assert "Rater gate" in page and "gold accuracy at least 50%" in page
    assert "Every rater, the left-out ones included" in page


def test_the_api_study_detail_carries_rater_quality(gated, manager_client):
    body = manager_client.get(f"/api/studies/{gated.pk}/").json()
    assert body["min_gold_accuracy"] == 0.5 and body["min_median_seconds"] == 3.0
    assert body["rater_quality"]["excluded"] == ["hasty"]
    assert body["rater_quality"]["pair"]["counted"]["win_rate"] == pytest.approx(0.75)


def test_the_api_report_json_carries_rater_quality(gated, manager_client):
    response = manager_client.get(f"/api/studies/{gated.pk}/report/?format=json")
    assert json.loads(response.content)["rater_quality"]["excluded"] == ["hasty"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("min_gold_accuracy", 1.5, ERROR_MIN_GOLD_ACCURACY.format(value=1.5)),
        ("min_median_seconds", -1.0, ERROR_MIN_MEDIAN_SECONDS.format(value=-1.0)),
    ],
)
def test_study_create_refuses_a_gate_out_of_range(field, value, message):
    outputs = run_with_outputs(prompts=2)
    with pytest.raises(StudyError) as refused:
        study_create(name="s", systems=outputs.systems, **{field: value})
    assert str(refused.value) == message
    assert not Study.objects.exists()


def test_the_new_study_form_sets_the_gate(manager_client):
    outputs = run_with_outputs(prompts=2)
    data = {
        "name": "Gate form",
        "systems": [s.pk for s in outputs.systems],
        "overlap": 1,
        "min_gold_accuracy": "0.8",
        "min_median_seconds": "5",
    }
    response = manager_client.post(reverse("study_create"), data)
    assert response.status_code == 302
    study = Study.objects.get(name="Gate form")
    assert (study.min_gold_accuracy, study.min_median_seconds) == (0.8, 5.0)


def test_the_new_study_form_names_a_bad_gate_field(manager_client):
    outputs = run_with_outputs(prompts=2)
    data = {
        "name": "Gate form",
        "systems": [s.pk for s in outputs.systems],
        "overlap": 1,
        "min_gold_accuracy": "2",
    }
    response = manager_client.post(reverse("study_create"), data)
    assert response.status_code == 422
    assert response.context["form"].errors["min_gold_accuracy"]
    assert "Minimum gold accuracy" in response.content.decode()
    assert not Study.objects.exists()


def test_the_form_leaves_a_blank_gate_at_its_defaults(manager_client):
    outputs = run_with_outputs(prompts=2)
    data = {"name": "Blank gate", "systems": [s.pk for s in outputs.systems], "overlap": 1}
    assert manager_client.post(reverse("study_create"), data).status_code == 302
    study = Study.objects.get(name="Blank gate")
    assert (study.min_gold_accuracy, study.min_median_seconds) == (0.5, 3.0)


def test_create_study_command_sets_the_gate_and_refuses_a_bad_one():
    outputs = run_with_outputs(prompts=2)
    ExpertFactory()
    call_command(
        "create_study",
        "--run",
        str(outputs.run.pk),
        "--name",
        "Gate cmd",
        "--overlap",
        "1",
        "--min-gold-accuracy",
        "0.7",
        "--min-median-seconds",
        "0",
        stdout=io.StringIO(),
    )
    study = Study.objects.get(name="Gate cmd")
    assert (study.min_gold_accuracy, study.min_median_seconds) == (0.7, 0.0)
    with pytest.raises(CommandError) as refused:
        call_command(
            "create_study",
            "--run",
            str(outputs.run.pk),
            "--name",
            "Bad gate",
            "--min-median-seconds",
            "-2",
            stdout=io.StringIO(),
        )
    assert str(refused.value) == ERROR_MIN_MEDIAN_SECONDS.format(value=-2.0)
    assert refused.value.returncode != 0
    assert not Study.objects.filter(name="Bad gate").exists()


def test_the_api_names_a_bad_gate_field(manager_client):
    outputs = run_with_outputs(prompts=2)
    response = manager_client.post(
        "/api/studies/",
        {
            "name": "Gate api",
            "systems": [s.pk for s in outputs.systems],
            "min_gold_accuracy": 3,
        },
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["min_gold_accuracy"] == [ERROR_MIN_GOLD_ACCURACY.format(value=3.0)]
    ok = manager_client.post(
        "/api/studies/",
        {"name": "Gate api", "systems": [s.pk for s in outputs.systems], "min_median_seconds": 6},
        content_type="application/json",
    )
    assert ok.status_code == 201
    assert ok.json()["min_median_seconds"] == 6.0
