"""The report endpoint serves the four export formats built by ``report_build``."""

import csv
import io
import json

import pytest

from evalhub.api import report_views
from evalhub.reports.render import ReportError


def _report(client, study, fmt: str | None = None):
    query = f"?format={fmt}" if fmt else ""
    return client.get(f"/api/studies/{study.id}/report/{query}")


@pytest.mark.parametrize("fmt", [None, "json"])
def test_json_report_is_the_default_and_carries_the_study(world, login, fmt):
    response = _report(login(world.manager), world.study, fmt)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    report = json.loads(response.content)
    assert report["schema"] == "evalhub.report/1"
    assert (report["study"]["id"], report["study"]["name"]) == (world.study.id, "Tone study")
    assert report["study"]["judgments"] == 1
    assert {s["name"] for s in report["study"]["systems"]} == {
        "zebra-base-system",
        "quokka-adapter-system",
    }
    # ties, length control, agreement intervals and drift: present, and saying why one
    # judgment is not enough rather than printing a number
    analysis = report["analysis"]
    assert analysis["ties"]["insufficient"] is True
    assert analysis["length_controlled"][0]["estimate"]["insufficient"] is True
    assert analysis["agreement_intervals"]["krippendorff_alpha"]["insufficient"] is True
    assert analysis["drift"]["change_interval"]["insufficient"] is True
    assert report["thresholds"]["model_resamples"] == 500


def test_csv_report_has_one_unblinded_row_per_judgment(world, login):
    response = _report(login(world.manager), world.study, "csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="study-' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 1
    assert rows[0]["rater"] == world.other_expert.username
    assert rows[0]["systems"] == "quokka-adapter-system vs zebra-base-system"
    assert rows[0]["quokka-adapter-system: output"] and rows[0]["zebra-base-system: output"]


def test_html_report_is_a_download(world, login):
    response = _report(login(world.manager), world.study, "html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert response["Content-Disposition"].startswith("attachment;")
    assert "Tone study" in response.content.decode()


def test_pdf_report_is_a_pdf(world, login):
    response = _report(login(world.manager), world.study, "pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")


def test_unknown_format_is_400_naming_the_parameter(world, login):
    response = _report(login(world.manager), world.study, "xml")
    assert response.status_code == 400
    assert "format" in response.json()


def test_missing_study_is_404_in_json_whatever_the_format(world, login):
    response = login(world.manager).get("/api/studies/987654/report/?format=pdf")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


def test_expert_is_refused_in_json_even_when_asking_for_a_pdf(world, login):
    response = _report(login(world.expert), world.study, "pdf")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"


def test_a_format_the_server_cannot_produce_is_503_with_the_reason(world, login, monkeypatch):
    def unavailable(report, fmt):
        raise ReportError("PDF export needs WeasyPrint")

    monkeypatch.setattr(report_views, "report_render", unavailable)
    response = _report(login(world.manager), world.study, "pdf")
    assert response.status_code == 503
    assert response.json() == {"detail": "PDF export needs WeasyPrint"}
