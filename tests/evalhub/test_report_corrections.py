"""Managers read the raters' better answers: on the item drill-down beside the comments, as
their own short list on the analysis page and in the HTML and PDF report, as a column of the
CSV and a field of each judgment in the JSON."""

import csv
import io
import json

import pytest
from django.urls import reverse

from evalhub.models import Judgment
from evalhub.reports.build import report_build
from evalhub.reports.render import render_csv, render_html, render_json
from tests.evalhub.report_fixtures import build_study
from tests.factories import ManagerFactory

HEADING = "Better answers the raters wrote"
LONG_PROMPT = "Explain, step by step: " + "why " * 100  # longer than the 240 characters shown


@pytest.fixture
def study(db):
    """The report study with two better answers on item 3 (ann's, bob's) and one on item 1
    (ann's), whose prompt is long."""
    study = build_study()
    judgments = Judgment.objects.filter(assignment__comparison__study=study)
    items = sorted({j.assignment.comparison_id for j in judgments})
    by = {
        (j.assignment.comparison_id, j.assignment.rater.username): j
        for j in judgments.select_related("assignment__rater", "assignment__comparison")
    }
    first = by[(items[1], "ann")]
    first.assignment.comparison.prompt.messages = [{"role": "user", "content": LONG_PROMPT}]
    first.assignment.comparison.prompt.save()
    for key, text in (
        ((items[3], "@bob"), "Restart the router,\nthen call us."),
        ((items[3], "ann"), "Restart the router first."),
        ((items[1], "ann"), "Because of the way the steps depend on each other."),
    ):
        Judgment.objects.filter(pk=by[key].pk).update(correction=text)
    return study


def _report(study):
    return report_build(study, resamples=50, bt_resamples=20, model_resamples=20)


def test_the_report_lists_each_better_answer_by_item_then_rater_with_the_prompts_start(study):
    report = _report(study)
    assert report["corrections"]["total"] == 3
    rows = [(c["rater"], c["correction"]) for c in report["corrections"]["rows"]]
    assert rows == [
        ("ann", "Because of the way the steps depend on each other."),
        ("@bob", "Restart the router,\nthen call us."),
        ("ann", "Restart the router first."),
    ]
    first, second, _ = report["corrections"]["rows"]
    assert first["item"] < second["item"]
    assert first["prompt_excerpt"] == LONG_PROMPT[:240]
    assert second["prompt_excerpt"].startswith("question ")
    stored = Judgment.objects.get(pk=first["judgment"])
    assert stored.correction == first["correction"]
    assert stored.assignment.comparison_id == first["item"]


def test_every_judgment_of_the_json_export_carries_its_better_answer(study):
    data = json.loads(render_json(_report(study)))
    stored = dict(
        Judgment.objects.filter(assignment__comparison__study=study).values_list("id", "correction")
    )
    assert {j["judgment"]: j["correction"] for j in data["judgments"]} == stored
    assert sum(1 for text in stored.values() if text) == len(data["corrections"]["rows"]) == 3


def test_the_csv_has_a_correction_column_after_the_comment(study):
    rows = list(csv.DictReader(io.StringIO(render_csv(_report(study)))))
    header = list(rows[0])
    assert header.index("correction") == header.index("comment") + 1
    stored = dict(
        Judgment.objects.filter(assignment__comparison__study=study).values_list("id", "correction")
    )
    assert {int(r["judgment_id"]): r["correction"] for r in rows} == stored


def test_the_html_report_shows_the_list_apart_and_without_links(study):
    html = render_html(_report(study))
    section = html[html.index('<section id="corrections">') :]
    section = section[: section.index("</section>")]
    assert HEADING in section
    assert 'data-key="corrections.total" data-value="3">3</span>' in section
    assert "Only the first" not in section
    assert "Restart the router,\nthen call us." in section and "@bob" in section
    assert LONG_PROMPT[:240] in section and LONG_PROMPT not in section
    assert "<a " not in section
    assert "Restart the router first." in render_html(_report(study), for_print=True)


def test_a_study_rich_in_better_answers_lists_the_first_and_says_where_the_rest_are(
    study, monkeypatch
):
    monkeypatch.setattr("evalhub.reports.render.CORRECTIONS_SHOWN", 2)
    report = _report(study)
    html = render_html(report)
    section = html[html.index('<section id="corrections">') :]
    section = section[: section.index("</section>")]
    assert section.count("<tr>") == 1 + 2  # the head and two answers
    assert "Restart the router first." not in section  # the third, by item then rater
    assert "Only the first 2 by item are listed here" in section
    assert len(json.loads(render_json(report))["corrections"]["rows"]) == 3


def test_a_report_without_better_answers_has_no_such_list(db):
    report = _report(build_study())
    assert report["corrections"] == {"total": 0, "rows": []}
    assert HEADING not in render_html(report)


def test_the_analysis_page_lists_them_with_links_to_the_item(study, client):
    client.force_login(ManagerFactory())
    html = client.get(reverse("study_analysis", args=[study.pk])).content.decode()
    section = html[html.index('<section id="corrections">') :]
    item = _report(study)["corrections"]["rows"][0]["item"]
    assert f'<a href="{reverse("study_item", args=[study.pk, item])}">#{item}</a>' in section
    assert "Because of the way the steps depend on each other." in section


def test_the_item_drill_down_shows_each_raters_better_answer_beside_the_comment(study, client):
    client.force_login(ManagerFactory())
    item = _report(study)["corrections"]["rows"][1]["item"]
    html = client.get(reverse("study_item", args=[study.pk, item])).content.decode()
    assert "<th>Comment</th><th>Better answer</th>" in html
    assert '<td class="text-output correction">Restart the router first.</td>' in html
    assert '<td class="text-output correction">Restart the router,\nthen call us.</td>' in html
