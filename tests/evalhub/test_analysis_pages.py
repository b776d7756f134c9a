import json
import re

import pytest

from evalhub.models import Comparison
from tests.evalhub.report_fixtures import ADAPTER_WIN_RATE, HOSTILE_OUTPUT, build_study
from tests.factories import ComparisonFactory, StudyFactory


@pytest.fixture
def study(db):
    return build_study()


def _urls(study):
    item = study.comparisons.order_by("id").first().pk
    return [
        f"/studies/{study.pk}/analysis/",
        f"/studies/{study.pk}/analysis/items/{item}/",
        f"/studies/{study.pk}/report.html",
        f"/studies/{study.pk}/report.csv",
        f"/studies/{study.pk}/report.json",
    ]


def test_anonymous_users_are_sent_to_login(client, study):
    for url in _urls(study):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


def test_experts_are_refused(expert_client, study):
    for url in _urls(study):
        assert expert_client.get(url).status_code == 403, url


def test_managers_get_every_page_and_download(manager_client, study):
    for url in _urls(study):
        assert manager_client.get(url).status_code == 200, url


@pytest.mark.parametrize(
    "url",
    [
        "/studies/999999/analysis/",
        "/studies/999999/report.json",
        "/studies/999999/analysis/items/1/",
    ],
)
def test_unknown_studies_are_404(manager_client, url):
    assert manager_client.get(url).status_code == 404


def test_unknown_format_is_404(manager_client, study):
    assert manager_client.get(f"/studies/{study.pk}/report.xlsx").status_code == 404


def test_an_item_of_another_study_is_404(manager_client, study):
    other = ComparisonFactory(study=StudyFactory())
    url = f"/studies/{study.pk}/analysis/items/{other.pk}/"
    assert manager_client.get(url).status_code == 404


def test_downloads_are_attachments_with_their_content_type(manager_client, study):
    response = manager_client.get(f"/studies/{study.pk}/report.csv")
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == (
        f'attachment; filename="study-{study.pk}-report.csv"'
    )
    pdf = manager_client.get(f"/studies/{study.pk}/report.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_page_shows_the_numbers_of_the_json_report(manager_client, study):
    page = manager_client.get(f"/studies/{study.pk}/analysis/").content.decode()
    data = json.loads(manager_client.get(f"/studies/{study.pk}/report.json").content)
    shown = re.search(r'data-key="analysis.pairs.0.win_rate" data-value="([^"]+)"', page)
    assert float(shown.group(1)) == data["analysis"]["pairs"][0]["win_rate"]
    assert data["analysis"]["pairs"][0]["win_rate"] == pytest.approx(ADAPTER_WIN_RATE)
    for fmt in ("html", "pdf", "csv", "json"):
        assert f'href="/studies/{study.pk}/report.{fmt}"' in page


def test_page_links_disagreements_to_the_item_drill_down(manager_client, study):
    page = manager_client.get(f"/studies/{study.pk}/analysis/").content.decode()
    assert f"/studies/{study.pk}/analysis/items/" in page


def test_item_page_unblinds_every_judgment_and_escapes_outputs(manager_client, study):
    comparison = Comparison.objects.filter(study=study).order_by("id").first()
    page = manager_client.get(f"/studies/{study.pk}/analysis/items/{comparison.pk}/")
    html = page.content.decode()
    assert HOSTILE_OUTPUT not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    judgments = page.context["judgments"]
    assert [j["rater"] for j in judgments] == ["@bob", "ann"]
    # item 0: both raters preferred the adapter, whichever side it was on
    assert {j["choice"] for j in judgments} == {"adapter-r16"}
    assert {j["shown_left"] for j in judgments} == {"adapter-r16", comparison.output_a.system.name}
    assert judgments[0]["scores"] == [{"criterion": "correctness", "a": 2, "b": 4}]
    assert "ROUGE-1" in html and "all-MiniLM-L6-v2" in html


def test_item_page_names_the_systems_not_the_sides(manager_client, study):
    comparison = Comparison.objects.filter(study=study).order_by("id").first()
    html = manager_client.get(f"/studies/{study.pk}/analysis/items/{comparison.pk}/").content
    text = re.sub(r"<[^>]+>", " ", html.decode())
    assert not re.search(r"Output [ab]\b|\([ab]\)", text)
    assert "<h2>adapter-r16</h2>" in html.decode()


def test_a_study_without_judgments_renders(manager_client, db):
    study = StudyFactory()
    ComparisonFactory(study=study)
    page = manager_client.get(f"/studies/{study.pk}/analysis/")
    assert page.status_code == 200
    assert b"No judgments yet" in page.content
    data = json.loads(manager_client.get(f"/studies/{study.pk}/report.json").content)
    assert data["analysis"]["judgments"] == 0


def test_pdf_download_explains_a_missing_system_library(manager_client, study, monkeypatch):
    from evalhub.reports import render

    def no_pango(report):
        raise render.ReportError(render.PDF_UNAVAILABLE.format(error="no libpango"))

    monkeypatch.setattr(render, "render_pdf", no_pango)
    response = manager_client.get(f"/studies/{study.pk}/report.pdf")
    assert response.status_code == 503
    assert response.content.decode() == render.PDF_UNAVAILABLE.format(error="no libpango")
