"""Model judges in the report (JSON, HTML, CSV), the analysis page and the API: the fixture
study stores base as output a, so every number below needs the judge's storage-order verdicts
turned to the report's orientation (adapter first)."""

import csv
import io
import json

import pytest
from django.test import Client
from django.urls import reverse
from sklearn.metrics import cohen_kappa_score

from evalhub.analysis.judge_calibration import MAY_NOT, REASON_FEW_DECIDED, REASON_FLIPS
from evalhub.models import Comparison, Judge, JudgeVerdict
from evalhub.reports.build import report_build
from evalhub.reports.render import render_csv, render_html
from tests.evalhub.report_fixtures import HOSTILE_SYSTEM, build_study
from tests.factories import ManagerFactory

pytestmark = pytest.mark.django_db


def judged_study():
    """Judge "smol", in storage terms (a = base): items 0–7 adapter in both orders; 8–10 the
    output shown first (a flip); item 11 base in both orders."""
    study = build_study()
    judge = Judge.objects.create(name="smol", model="smollm2-135m")
    for item, comparison in enumerate(Comparison.objects.filter(study=study).order_by("id")):
        if item < 8:
            choices = {"ab": "b", "ba": "b"}
        elif item < 11:
            choices = {"ab": "a", "ba": "b"}
        else:
            choices = {"ab": "a", "ba": "a"}
        for order, choice in choices.items():
            JudgeVerdict.objects.create(
                judge=judge, comparison=comparison, order=order, choice=choice, raw=choice
            )
    return study


def _report(study, **kwargs):
    return report_build(study, resamples=50, bt_resamples=20, model_resamples=200, **kwargs)


def test_the_report_calibrates_the_judge_in_the_reports_orientation():
    (block,) = _report(judged_study(), include_judgments=False)["judges"]
    assert (block["name"], block["verdicts"], block["judged"], block["flips"]) == (
        "smol",
        24,
        12,
        3,
    )
    assert block["flip_rate"] == pytest.approx(0.25)
    # experts (a = adapter): 0–7 a, 8–10 b, 11 tie (tie and both bad); judge: 0–7 a, 8–10 tie, 11 b
    assert block["confusion"]["counts"] == [[8, 0, 0], [0, 0, 3], [0, 1, 0]]
    assert block["confusion"]["names"] == ["adapter-r16", HOSTILE_SYSTEM, "tie"]
    experts = ["a"] * 8 + ["b"] * 3 + ["tie"]
    judge = ["a"] * 8 + ["tie"] * 3 + ["b"]
    assert block["kappa"]["value"] == pytest.approx(26 / 74)
    assert block["kappa"]["value"] == pytest.approx(cohen_kappa_score(experts, judge))
    assert block["kappa"]["interval"]["low"] <= block["kappa"]["value"]
    # shown first and won, of 24 decisive verdicts: 8 (items 0–7) + 6 (8–10) + 1 (item 11)
    assert block["position_bias"]["judge"]["share"] == pytest.approx(15 / 24)
    # the adapter's answer is the longer: 16 + 3 of 24
    assert block["length_bias"]["judge"]["share"] == pytest.approx(19 / 24)
    assert block["length_bias"]["experts"]["share"] == pytest.approx(16 / 22)
    first = min(Comparison.objects.values_list("id", flat=True))
    assert [d["comparison"] - first for d in block["disagreements"]] == [8, 9, 10, 11]
    assert block["disagreements"][0] == {
        "comparison": first + 8,
        "judge": "tie",
        "experts": HOSTILE_SYSTEM,
        "orders": [
            {"first": "adapter-r16", "choice": "adapter-r16"},
            {"first": HOSTILE_SYSTEM, "choice": HOSTILE_SYSTEM},
        ],
    }
    assert block["stand_in"]["verdict"] == MAY_NOT
    assert REASON_FEW_DECIDED.format(n=12, need=50) in block["stand_in"]["reasons"]
    assert REASON_FLIPS.format(rate=0.25, most=0.2) in block["stand_in"]["reasons"]


def test_a_study_without_judges_has_an_empty_block_and_no_section():
    report = _report(build_study(), include_judgments=True)
    assert report["judges"] == [] and report["judge_verdicts"] == []
    assert 'id="judges"' not in render_html(report)
    assert not any("judge" in c for c in next(csv.reader(io.StringIO(render_csv(report)))))


def test_html_shows_the_judge_section_with_numbers_from_the_json_escaped():
    report = _report(judged_study(), include_judgments=False)
    html = render_html(report)
    assert 'id="judges"' in html and MAY_NOT in html
    kappa = json.dumps(report["judges"][0]["kappa"]["value"])
    assert f'data-key="judges.0.kappa.value" data-value="{kappa}"' in html
    assert 'data-key="judges.0.flip_rate" data-value="0.25"' in html
    assert "<b onmouseover" not in html


def test_csv_gives_each_row_the_judges_call_on_its_comparison():
    report = _report(judged_study(), include_judgments=True)
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    first = min(int(r["comparison_id"]) for r in rows)
    calls = {
        int(r["comparison_id"]) - first: (r["judge smol: call"], r["judge smol: flipped"])
        for r in rows
    }
    assert calls[0] == ("adapter-r16", "False")
    assert calls[8] == ("tie", "True")
    assert calls[11] == (HOSTILE_SYSTEM, "False")
    verdicts = {v["comparison"] - first: v for v in report["judge_verdicts"]}
    assert verdicts[9] | {"comparison": 9} == {
        "judge": "smol",
        "comparison": 9,
        "orders": [
            {"first": "adapter-r16", "choice": "adapter-r16"},
            {"first": HOSTILE_SYSTEM, "choice": HOSTILE_SYSTEM},
        ],
        "call": "tie",
        "flipped": True,
    }


def test_managers_read_it_on_the_analysis_page_and_the_api_report_experts_never():
    study = judged_study()
    manager = Client()
    manager.force_login(ManagerFactory())
    page = manager.get(reverse("study_analysis", args=[study.pk]))
    assert page.status_code == 200 and b'id="judges"' in page.content
    api = manager.get(f"/api/studies/{study.pk}/report/").json()
    assert api["judges"][0]["name"] == "smol" and len(api["judge_verdicts"]) == 12
    expert = Client()
    expert.force_login(study.comparisons.first().assignments.first().rater)
    for path in (
        reverse("study_analysis", args=[study.pk]),
        reverse("study_report", args=[study.pk, "json"]),
        f"/api/studies/{study.pk}/report/",
        reverse("study_detail", args=[study.pk]),
    ):
        assert expert.get(path).status_code == 403, path
