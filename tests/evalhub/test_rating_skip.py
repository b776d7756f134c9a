"""Flag and skip: a rater can pass on an item they cannot judge, saying why. The skip counts as
done for them and in no statistic; the sequential monitor needs one judgment fewer for it."""

import pytest
from django.core.cache import cache
from django.db import IntegrityError
from django.test import Client
from django.urls import reverse

from evalhub.models import Assignment, Choice, Judgment
from evalhub.reports.build import report_build
from evalhub.reports.items import item_detail
from evalhub.selectors.rating import rater_next_assignment, rater_progress
from evalhub.selectors.studies import (
    study_monitored_pair,
    study_rater_stats,
    study_sequential,
)
from evalhub.services.gold import GoldItem
from evalhub.services.judgments import ERROR_SKIP_REASON, INVALID, JudgmentError, judgment_submit
from tests.evalhub.rating_fixtures import open_study
from tests.factories import ManagerFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    cache.clear()


@pytest.fixture
def rating(client):
    study, (rater, other), _outputs = open_study(prompts=3)
    client.force_login(rater)
    return study, rater, other, client


def item_url(study, rater) -> str:
    return reverse("rate_item", args=[rater_next_assignment(study=study, rater=rater).token])


def adapter_choice(assignment: Assignment, adapter) -> str:
    return "a" if assignment.left_output.system_id == adapter.pk else "b"


def test_flag_and_skip_records_a_flagged_skip_and_moves_on(rating):
    study, rater, _, client = rating
    url = item_url(study, rater)
    response = client.post(url, {"skip": "1", "flag_reason": " prompt is cut off "})
    assert response.status_code == 302 and response["Location"] != url
    judgment = Judgment.objects.get()
    assert (judgment.choice, judgment.flagged, judgment.flag_reason) == (
        Choice.SKIP,
        True,
        "prompt is cut off",
    )


def test_a_skip_counts_as_done_in_the_raters_progress(rating):
    study, rater, _, client = rating
    skipped = rater_next_assignment(study=study, rater=rater)
    client.post(item_url(study, rater), {"skip": "1", "flag_reason": "unreadable"})
    assert rater_progress(study=study, rater=rater).done == 1
    assert rater_next_assignment(study=study, rater=rater) != skipped
    overview = client.get(reverse("rate_study", args=[study.pk])).content.decode()
    assert "<strong>1 of 3</strong> judged" in overview
    assert "Skipped" in overview and "flagged" in overview


def test_a_skip_without_a_reason_is_refused_naming_the_field(rating):
    study, rater, _, client = rating
    response = client.post(item_url(study, rater), {"skip": "1", "comment": "kept"}, **HTMX)
    assert response.status_code == 422
    html = response.content.decode()
    assert ERROR_SKIP_REASON in html and ">kept</textarea>" in html
    assert 'aria-invalid="true" autofocus' in html
    assert not Judgment.objects.exists()


def test_the_service_refuses_a_skip_without_a_reason_and_always_flags_it(rating):
    study, rater, _, _ = rating
    assignment = rater_next_assignment(study=study, rater=rater)
    with pytest.raises(JudgmentError) as refused:
        judgment_submit(assignment=assignment, rater=rater, choice=Choice.SKIP, flag_reason=" ")
    assert (str(refused.value), refused.value.code) == (ERROR_SKIP_REASON, INVALID)
    judgment = judgment_submit(
        assignment=assignment, rater=rater, choice=Choice.SKIP, flag_reason="offensive"
    )
    assert judgment.flagged and judgment.flag_reason == "offensive"


def test_the_database_refuses_a_skip_that_is_not_flagged_with_a_reason(rating):
    study, rater, _, _ = rating
    assignment = rater_next_assignment(study=study, rater=rater)
    with pytest.raises(IntegrityError):
        Judgment.objects.create(assignment=assignment, choice=Choice.SKIP, flagged=False)


def test_a_skipped_item_can_be_revised_into_a_verdict(rating):
    study, rater, _, client = rating
    url = item_url(study, rater)
    client.post(url, {"skip": "1", "flag_reason": "unsure"})
    page = client.get(url).content.decode()
    assert "skipped: choose a side to revise" in page and 'value="unsure"' in page
    assert "checked>" not in page.split("rate-choice")[1].split("</fieldset>")[0]
    client.post(url, {"choice": "a"})
    judgment = Judgment.objects.get()
    assert (judgment.choice, judgment.flagged, judgment.revisions) == ("a", False, 1)


def test_skips_count_in_no_win_rate_and_stay_in_the_exported_rows(rating):
    study, rater, other, _ = rating
    adapter, _ = study_monitored_pair(study=study)
    for a in Assignment.objects.filter(comparison__study=study, rater=other):
        judgment_submit(assignment=a, rater=other, choice=adapter_choice(a, adapter))
    mine = list(Assignment.objects.filter(comparison__study=study, rater=rater))
    for a in mine:
        judgment_submit(assignment=a, rater=rater, choice=Choice.SKIP, flag_reason="can't tell")

    report = report_build(study, resamples=50, bt_resamples=20)
    analysis = report["analysis"]
    assert analysis["judgments"] == 3  # the other rater's only
    (pair,) = analysis["pairs"]
    wins = pair["wins"] if pair["system"] == adapter.name else pair["losses"]
    assert (pair["n"], wins, pair["both_bad"], pair["ties"]) == (3, 3, 0, 0)
    skipped = [row for row in report["judgments"] if row["verdict"] == Choice.SKIP]
    assert len(skipped) == 3 and {row["flag_reason"] for row in skipped} == {"can't tell"}


def test_a_comparison_completes_when_its_other_raters_judged_and_the_rest_skipped(rating):
    study, rater, other, _ = rating
    adapter, _ = study_monitored_pair(study=study)
    for a in Assignment.objects.filter(comparison__study=study, rater=other):
        judgment_submit(assignment=a, rater=other, choice=adapter_choice(a, adapter))
    assert study_sequential(study=study).units == 0  # each comparison waits for two

    first, second, _ = Assignment.objects.filter(comparison__study=study, rater=rater)
    judgment_submit(assignment=first, rater=rater, choice=Choice.SKIP, flag_reason="broken")
    state = study_sequential(study=study)
    assert (state.units, state.judgments, state.wins) == (1, 3, 3)

    judgment_submit(assignment=second, rater=rater, choice=adapter_choice(second, adapter))
    assert study_sequential(study=study).units == 2


def test_a_skipped_gold_item_is_not_a_wrong_answer():
    gold = [GoldItem(prompt="What is 2 + 2?", better="4", worse="5", reference="4")]
    study, (rater, _), _ = open_study(prompts=2, gold=gold)
    item = Assignment.objects.get(comparison__study=study, rater=rater, comparison__is_gold=True)
    judgment_submit(assignment=item, rater=rater, choice=Choice.SKIP, flag_reason="no idea")
    stats = next(row for row in study_rater_stats(study=study) if row.rater == rater)
    assert (stats.done, stats.gold_judged, stats.flagged) == (1, 0, 1)


def test_managers_see_a_skip_and_its_reason_with_the_flagged_items(rating):
    study, rater, _, client = rating
    client.post(item_url(study, rater), {"skip": "1", "flag_reason": "prompt in Klingon"})
    manager = Client()
    manager.force_login(ManagerFactory())
    page = manager.get(reverse("study_detail", args=[study.pk])).content.decode()
    flagged = page.split("<h2>Flagged items</h2>")[1]
    assert '<span class="status">skipped</span> prompt in Klingon' in flagged
    comparison = Judgment.objects.get().assignment.comparison
    item = manager.get(reverse("study_item", args=[study.pk, comparison.pk])).content.decode()
    assert "flagged: prompt in Klingon" in item


def test_the_managers_item_drill_down_says_skipped(rating):
    study, rater, _, _ = rating
    assignment = rater_next_assignment(study=study, rater=rater)
    judgment_submit(assignment=assignment, rater=rater, choice=Choice.SKIP, flag_reason="cut off")
    rows = item_detail(assignment.comparison)["judgments"]
    assert [(r["choice"], r["flag_reason"]) for r in rows] == [("skipped", "cut off")]
