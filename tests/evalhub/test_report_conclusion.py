"""The one-line conclusion at the top of the analysis page and the report, and in the JSON."""

import json
import re

import pytest

from evalhub.reports.build import report_build
from evalhub.reports.conclusion import NO_JUDGMENTS, conclusion
from evalhub.reports.render import render_html, render_json
from tests.evalhub.report_fixtures import build_study, build_three_system_study


def _sequential(verdict, estimate, low, high, judgments, *, needed=None, left=500, stopped_at=None):
    return {
        "adapter": "adapter-r16",
        "base": "smollm2-135m",
        "verdict": verdict,
        "estimate": estimate,
        "interval": {"low": low, "high": high, "method": "betting"},
        "judgments": judgments,
        "judgments_needed": needed,
        "judgments_left": left,
        "margin": 0.05,
        "stopped_at": stopped_at,
    }


TWO = ["adapter-r16", "smollm2-135m"]


@pytest.mark.parametrize(
    ("sequential", "line"),
    [
        (
            _sequential("adapter_better", 0.72, 0.56, 0.84, 36),
            "adapter-r16 is preferred to smollm2-135m: 72 % [56, 84], n = 36 · decided",
        ),
        (
            _sequential("base_better", 0.28, 0.16, 0.44, 36, stopped_at=30),
            "smollm2-135m is preferred to adapter-r16: 72 % [56, 84], n = 36 · decided, "
            "the study stopped itself",
        ),
        (
            _sequential("undecided", 0.55, 0.41, 0.68, 20, needed=90),
            "No verdict yet: adapter-r16 wins 55 % [41, 68] against smollm2-135m, n = 20 · "
            "about 90 more judgments needed",
        ),
        (
            _sequential("undecided", 0.55, 0.41, 0.68, 20, needed=90, left=40),
            "No verdict yet: adapter-r16 wins 55 % [41, 68] against smollm2-135m, n = 20 · "
            "about 90 more judgments needed, more than the 40 this study has left",
        ),
        (
            _sequential("undecided", 0.5, 0.3, 0.7, 20),
            "No verdict yet: adapter-r16 wins 50 % [30, 70] against smollm2-135m, n = 20 · "
            "no verdict in sight at the current win rate",
        ),
        (
            _sequential("equivalent", 0.51, 0.47, 0.54, 1200),
            "Equivalent within ±5 points: adapter-r16 wins 51 % [47, 54] against smollm2-135m, "
            "n = 1200 · decided",
        ),
        (_sequential("undecided", None, 0.0, 1.0, 0), NO_JUDGMENTS),
    ],
)
def test_two_systems_conclude_with_the_verdict_win_rate_interval_and_n(sequential, line):
    analysis = {"judgments": sequential["judgments"], "ranking": {}}
    assert conclusion(sequential=sequential, analysis=analysis, systems=TWO) == line


def test_three_systems_conclude_with_the_ranking(db):
    report = report_build(build_three_system_study(), resamples=50, bt_resamples=100)
    tiers = {}
    for s in report["analysis"]["ranking"]["systems"]:
        tiers.setdefault(s["tier"], []).append(s["system"])
    order = " > ".join(" ≈ ".join(names) for _, names in sorted(tiers.items()))
    assert report["conclusion"] == f"Ranking: {order} (Bradley–Terry), n = 36"
    assert order.startswith("reference")


@pytest.fixture
def report(db):
    return report_build(build_study(), resamples=100, bt_resamples=20)


def test_the_json_report_carries_the_conclusion_of_the_sequential_verdict(report):
    q = report["sequential"]
    assert json.loads(render_json(report))["conclusion"] == report["conclusion"]
    assert report["conclusion"].startswith("No verdict yet: adapter-r16 wins 71 % [")
    assert report["conclusion"].endswith(
        f"n = 24 · about {q['judgments_needed']} more judgments needed, none left"
    )


def test_the_html_report_opens_with_the_conclusion(report):
    html = render_html(report)
    headline = re.search(r'<p class="conclusion" id="conclusion">(.*?)</p>', html, re.S)
    assert headline and "adapter-r16 wins 71 %" in headline[1]
    assert html.index('id="conclusion"') < html.index('id="provenance"')


def test_the_analysis_page_opens_with_the_conclusion(manager_client, db):
    study = build_study()
    html = manager_client.get(f"/studies/{study.pk}/analysis/").content.decode()
    headline = re.search(r'<p class="conclusion" id="conclusion">(.*?)</p>', html, re.S)
    assert headline and headline[1].startswith("No verdict yet: adapter-r16 wins 71 %")
    assert "&lt;b onmouseover" in headline[1]  # the base's hostile name, escaped
    assert html.index('id="conclusion"') < html.index('id="win-rates"')
