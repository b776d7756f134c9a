"""The reviewers' final calls in the report: counted, used as the label of their comparisons in
the win rate with adjudication, shown in all four formats, and never in place of the raters'
judgments."""

import csv
import io
import json

import pytest

from evalhub.models import Adjudication, Comparison
from evalhub.reports.build import report_build
from evalhub.reports.render import render_csv, render_html, render_json
from tests.evalhub.report_fixtures import ADAPTER_WIN_RATE, HOSTILE_SYSTEM, build_study
from tests.factories import ReviewerFactory

pytestmark = pytest.mark.django_db

# Per comparison, the raters' mean for the adapter: items 0–7 one each, 8–10 nought, 11 (a
# tie and a "both bad") a half.
RATERS_ONLY = 8.5 / 12
# Item 11 settled for the adapter, item 8 for base as its raters said: 9 of 12.
WITH_FINAL_CALLS = 9 / 12


def _settle(study):
    items = list(Comparison.objects.filter(study=study).order_by("id"))
    reviewer = ReviewerFactory(username="rhea")
    # Base is stored as output a, the adapter as output b (report_fixtures).
    for item, verdict in ((items[11], "b"), (items[8], "a")):
        Adjudication.objects.create(
            comparison=item, reviewer=reviewer, verdict=verdict, left_output=item.output_a
        )
    return items


def _settled_report():
    study = build_study()
    items = _settle(study)
    return report_build(study, resamples=200, bt_resamples=20), items


def test_the_report_counts_final_calls_and_gives_both_win_rates():
    report, _ = _settled_report()
    block = report["adjudication"]
    assert block["adjudicated"] == 2
    (pair,) = block["pairs"]
    assert (pair["system"], pair["opponent"]) == ("adapter-r16", HOSTILE_SYSTEM)
    assert (pair["items"], pair["adjudicated"]) == (12, 2)
    assert pair["win_rate"] == pytest.approx(RATERS_ONLY)
    assert pair["win_rate_adjudicated"] == pytest.approx(WITH_FINAL_CALLS)


def test_the_raters_judgments_and_every_other_number_stay_as_they_were():
    study = build_study()
    plain = report_build(study, resamples=200, bt_resamples=20)
    _settle(study)
    report = report_build(study, resamples=200, bt_resamples=20)
    assert plain["adjudication"]["adjudicated"] == 0
    assert report["analysis"]["pairs"][0]["win_rate"] == pytest.approx(ADAPTER_WIN_RATE)
    for key in ("analysis", "judgments", "sequential", "ppi", "conclusion"):
        assert report[key] == plain[key], key


def test_json_lists_each_final_call_by_system():
    report, items = _settled_report()
    calls = json.loads(render_json(report))["final_calls"]
    assert [(c["comparison"], c["choice"], c["reviewer"]) for c in calls] == [
        (items[8].pk, HOSTILE_SYSTEM, "rhea"),
        (items[11].pk, "adapter-r16", "rhea"),
    ]


def test_html_shows_the_section_with_its_numbers_and_how_to_read_it():
    report, _ = _settled_report()
    html = render_html(report)
    assert "Disagreements settled by a reviewer" in html and "How to read this" in html
    for key in ("adjudication.adjudicated", "adjudication.pairs.0.win_rate_adjudicated"):
        assert f'data-key="{key}"' in html
    assert f"{WITH_FINAL_CALLS * 100:.1f}%" in html and f"{RATERS_ONLY * 100:.1f}%" in html
    assert "Disagreements settled by a reviewer" in render_html(report, for_print=True)


def test_csv_gives_each_judgment_its_comparisons_final_call():
    report, items = _settled_report()
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    calls = {int(r["comparison_id"]): r["final_call"] for r in rows}
    assert calls[items[11].pk] == "adapter-r16"
    assert calls[items[8].pk] == HOSTILE_SYSTEM
    assert {calls[c.pk] for c in items[:8]} == {""}
