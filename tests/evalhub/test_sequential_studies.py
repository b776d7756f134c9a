"""The live verdict and self-stopping through the services, pages, report, API and commands,
and the planner on the New study page and as ``manage.py plan_study``."""

import json
from collections import Counter
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from evalhub.analysis.planning import ERROR_WIN_RATE
from evalhub.analysis.sequential import ADAPTER_BETTER, UNDECIDED
from evalhub.models import Assignment, Judgment, Study, StudyStatus
from evalhub.reports.build import report_build
from evalhub.reports.render import render_html
from evalhub.selectors.studies import (
    earlier_correlations,
    sequential_block,
    study_monitored_pair,
    study_sequential,
)
from evalhub.services.judgments import judgment_submit
from evalhub.services.studies import ERROR_MARGIN, StudyError, study_create, study_set_status
from evalhub.views.rating import NOTICE_COMPLETE
from tests.evalhub.rating_fixtures import MODEL_NAME, open_study, run_with_outputs
from tests.factories import ExpertFactory, ManagerFactory

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def adapter_wins(study: Study, count: int | None = None) -> None:
    """Judge the study's assignments (in id order), the adapter winning each."""
    adapter, _ = study_monitored_pair(study=study)
    pending = Assignment.objects.filter(comparison__study=study, judgment__isnull=True)
    for assignment in list(pending.select_related("left_output").order_by("id"))[:count]:
        study.refresh_from_db()
        if study.status != StudyStatus.OPEN:
            return
        choice = "a" if assignment.left_output.system_id == adapter.pk else "b"
        judgment_submit(assignment=assignment, rater=assignment.rater, choice=choice)


def judgment_completing(study: Study, comparisons: int) -> int:
    """How many judgments had been made when the ``comparisons``-th comparison got its last."""
    required = Counter(
        Assignment.objects.filter(comparison__study=study).values_list("comparison_id", flat=True)
    )
    seen: Counter = Counter()
    done = 0
    order = Judgment.objects.filter(assignment__comparison__study=study).order_by("id")
    for index, comparison in enumerate(
        order.values_list("assignment__comparison_id", flat=True), 1
    ):
        seen[comparison] += 1
        done += seen[comparison] == required[comparison]
        if done == comparisons:
            return index
    raise AssertionError(f"fewer than {comparisons} comparisons complete")


def manager_client() -> Client:
    client = Client()
    client.force_login(ManagerFactory())
    return client


def test_a_self_stopping_study_pauses_when_a_judgment_decides_it():
    study, _, _ = open_study(prompts=12, stop_when_decided=True)
    adapter_wins(study)
    study.refresh_from_db()
    assert study.status == StudyStatus.PAUSED and study.complete
    # Ten comparisons won outright are the fewest that take the capital at ½ past 1/α = 20;
    # the study stops at the judgment that completes the tenth.
    assert study.stopped_at == judgment_completing(study, 10)
    assert study_sequential(study=study).units == 10
    left = Assignment.objects.filter(comparison__study=study, judgment__isnull=True).count()
    assert left == 24 - study.stopped_at


def test_a_study_that_keeps_collecting_stays_open_after_the_verdict():
    study, _, _ = open_study(prompts=12)
    adapter_wins(study)
    study.refresh_from_db()
    assert study.status == StudyStatus.OPEN and study.stopped_at is None
    report = report_build(study, resamples=50, bt_resamples=10)
    assert report["sequential"]["verdict"] == ADAPTER_BETTER
    assert report["sequential"]["decided_at"] == judgment_completing(study, 10)
    assert (report["sequential"]["units"], report["sequential"]["judgments"]) == (12, 24)


def test_reopening_a_study_that_stopped_itself_keeps_it_collecting():
    study, _, _ = open_study(prompts=12, stop_when_decided=True)
    adapter_wins(study)
    study = study_set_status(study=Study.objects.get(pk=study.pk), status=StudyStatus.OPEN)
    assert (study.stopped_at, study.stop_when_decided) == (None, False)
    adapter_wins(study)
    study.refresh_from_db()
    assert study.status == StudyStatus.OPEN


def test_raters_are_told_the_study_is_complete_and_nothing_about_who_won():
    study, (expert, _), _ = open_study(prompts=12, stop_when_decided=True)
    adapter_wins(study)
    client = Client()
    client.force_login(expert)
    pages = [
        client.get(reverse("rate_study", args=[study.pk])),
        client.get(reverse("rate_home")),
    ]
    assert NOTICE_COMPLETE in pages[0].content.decode()
    assert "complete" in pages[1].content.decode()
    for page in pages:
        body = page.content.decode().lower()
        for word in ("adapter", "base", "win rate", "interval", "verdict", MODEL_NAME, "zebra-run"):
            assert word not in body, word


def test_the_study_page_shows_the_verdict_and_interval():
    study, _, _ = open_study(prompts=12)
    adapter_wins(study)
    body = manager_client().get(reverse("study_detail", args=[study.pk])).content.decode()
    assert "Verdict so far" in body and "is better" in body and "always-valid interval" in body


def test_a_study_too_small_for_its_verdict_says_so_on_its_page_and_in_its_report():
    study, _, _ = open_study(prompts=3)
    adapter_wins(study, count=4)
    block = sequential_block(study=study)
    assert block["verdict"] == UNDECIDED and block["units"] >= 1
    assert block["judgments_left"] == 2 < block["judgments_needed"]
    body = manager_client().get(reverse("study_detail", args=[study.pk])).content.decode()
    assert (
        f"about {block['judgments_needed']} more judgments needed if the estimate holds, "
        "more than the 2 this study has left (a rough projection"
    ) in body
    report = report_build(study, resamples=50, bt_resamples=10)
    assert report["conclusion"].endswith("more than the 2 this study has left")
    assert 'data-key="sequential.judgments_left"' in render_html(report)


def test_the_report_json_and_html_carry_the_sequential_block():
    study, _, outputs = open_study(prompts=12, equivalence_margin=0.1)
    adapter_wins(study, count=16)
    report = report_build(study, resamples=50, bt_resamples=10)
    block = report["sequential"]
    assert (block["adapter"], block["base"]) == (outputs.adapter.name, outputs.base.name)
    assert (block["verdict"], block["judgments"], block["margin"]) == (UNDECIDED, 16, 0.1)
    assert block["units"] >= 1 and block["interval"]["low"] < 0.5 < block["interval"]["high"]
    assert block["judgments_needed"] > 0
    assert block["judgments_left"] == Assignment.objects.filter(judgment__isnull=True).count()
    html = render_html(report)
    assert 'data-key="sequential.interval"' in html and "Verdict so far" in html


def test_the_api_detail_carries_the_sequential_block_and_creates_with_the_settings():
    study, _, _ = open_study(prompts=12)
    adapter_wins(study)
    client = manager_client()
    detail = client.get(f"/api/studies/{study.pk}/").json()
    assert detail["sequential"]["verdict"] == ADAPTER_BETTER
    assert detail["sequential"]["interval"]["low"] > 0.5
    outputs = run_with_outputs(prompts=2, run_name="second-run")
    body = {
        "name": "Second",
        "systems": [outputs.base.pk, outputs.adapter.pk],
        "stop_when_decided": True,
        "equivalence_margin": 0.1,
        "raters_at_large": True,
    }
    created = client.post("/api/studies/", body, content_type="application/json")
    assert created.status_code == 201
    settings = ("stop_when_decided", "equivalence_margin", "raters_at_large")
    assert tuple(created.json()[name] for name in settings) == (True, 0.1, True)
    assert detail["sequential"]["raters_at_large"] is False  # the default: these raters
    refused = client.post(
        "/api/studies/",
        {**body, "name": "Third", "equivalence_margin": 0.7},
        content_type="application/json",
    )
    assert refused.status_code == 400 and "equivalence_margin" in refused.json()


def test_a_margin_outside_its_range_is_refused():
    outputs = run_with_outputs(prompts=2)
    with pytest.raises(StudyError, match="equivalence margin"):
        study_create(name="x", systems=outputs.systems, equivalence_margin=0.5)
    assert ERROR_MARGIN.startswith("The equivalence margin")


def test_the_new_study_form_stores_the_stopping_settings():
    outputs = run_with_outputs(prompts=2)
    response = manager_client().post(
        reverse("study_create"),
        {
            "name": "Form study",
            "systems": [outputs.base.pk, outputs.adapter.pk],
            "overlap": 1,
            "stop_when_decided": "on",
            "equivalence_margin": "0.08",
            "raters_at_large": "on",
        },
    )
    assert response.status_code == 302
    study = Study.objects.get(name="Form study")
    assert (study.stop_when_decided, study.equivalence_margin) == (True, 0.08)
    assert study.raters_at_large


def test_the_planner_answers_htmx_with_its_fragment_and_plain_gets_with_the_page():
    client = manager_client()
    query = {
        "plan-win_rate": "0.6",
        "plan-tie_rate": "0",
        "plan-power": "0.8",
        "plan-alpha": "0.05",
        "plan-overlap": "1",
    }
    fragment = client.get(reverse("study_plan"), query, **HTMX)
    assert fragment.status_code == 200
    body = fragment.content.decode()
    assert "<strong>194 judgments</strong>" in body and "<h1>" not in body
    page = client.get(reverse("study_plan"), query)
    assert page.status_code == 200
    assert "<strong>194 judgments</strong>" in page.content.decode()
    assert "<h1>New study</h1>" in page.content.decode()


def test_the_planner_refuses_bad_input_with_a_422_naming_the_field():
    client = manager_client()
    query = {
        "plan-win_rate": "0.5",
        "plan-tie_rate": "0",
        "plan-power": "0.8",
        "plan-alpha": "0.05",
        "plan-overlap": "2",
    }
    refused = client.get(reverse("study_plan"), query, **HTMX)
    assert refused.status_code == 422
    assert "win_rate" in refused.content.decode()
    assert ERROR_WIN_RATE.format(value=0.5) in refused.content.decode()
    missing = client.get(reverse("study_plan"), {**query, "plan-win_rate": "x"}, **HTMX)
    # Named by the label people see on the form, not the code's field name.
    assert missing.status_code == 422 and "<strong>Win rate</strong>" in missing.content.decode()


def test_plan_study_command_prints_json_with_judgments_and_prompts():
    out = StringIO()
    call_command("plan_study", "--win-rate", "0.6", "--overlap", "1", "--json", stdout=out)
    plan = json.loads(out.getvalue())
    assert (plan["judgments"], plan["prompts"], plan["decisive_independent"]) == (194, 194, 194)
    out = StringIO()
    call_command("plan_study", "--win-rate", "0.6", "--tie-rate", "0.2", stdout=out)
    # Two raters suffice for a verdict about them: 242.3 decisive-equivalent × 1.2 for prompts.
    assert out.getvalue().startswith("292 judgments on 146 prompts")
    assert "study's own raters" in out.getvalue()
    out = StringIO()
    call_command(
        "plan_study",
        *("--win-rate", "0.6", "--tie-rate", "0.2", "--raters", "6", "--raters-at-large"),
        stdout=out,
    )
    assert "raters at large" in out.getvalue() and "defaults" in out.getvalue()


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--win-rate", "0.5"], "--win-rate"),
        (["--win-rate", "0.6", "--alpha", "0"], "--alpha"),
        (["--win-rate", "0.6", "--overlap", "0"], "--overlap"),
    ],
)
def test_plan_study_bad_input_exits_2_naming_the_flag(args, flag):
    with pytest.raises(CommandError) as refused:
        call_command("plan_study", *args)
    assert refused.value.returncode == 2
    assert str(refused.value).startswith(flag)


def test_create_study_takes_the_stopping_flags():
    outputs = run_with_outputs(prompts=2)
    ExpertFactory(), ExpertFactory()
    call_command(
        "create_study",
        "--run",
        str(outputs.run.pk),
        "--stop-when-decided",
        "--equivalence-margin",
        "0.1",
        "--raters-at-large",
        stdout=StringIO(),
    )
    study = Study.objects.get()
    assert (study.stop_when_decided, study.equivalence_margin) == (True, 0.1)
    assert study.raters_at_large


def test_earlier_studies_give_the_planner_their_correlations():
    assert "defaults" in earlier_correlations().source
    study, _, outputs = open_study(prompts=12, raters=3)
    # Both raters of a prompt agree, and prompts differ: a high prompt correlation.
    for assignment in Assignment.objects.filter(comparison__study=study).select_related(
        "left_output", "comparison"
    ):
        adapter_side = "a" if assignment.left_output.system_id == outputs.adapter.pk else "b"
        other = "b" if adapter_side == "a" else "a"
        wins = assignment.comparison.prompt_id % 2 == 0
        judgment_submit(
            assignment=assignment, rater=assignment.rater, choice=adapter_side if wins else other
        )
    measured = earlier_correlations()
    assert "from 12 comparisons" in measured.source
    assert measured.prompt_icc == pytest.approx(1.0)


def test_before_a_comparison_is_complete_nothing_is_projected():
    study, _, _ = open_study(prompts=6)
    block = sequential_block(study=study)
    assert (block["units"], block["judgments_needed"], block["judgments_left"]) == (0, None, 12)
    body = manager_client().get(reverse("study_detail", args=[study.pk])).content.decode()
    assert "nothing to project from until a comparison is complete" in body
    assert "more judgments needed" not in body and "no verdict in sight" not in body
