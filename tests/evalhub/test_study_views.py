from html import escape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from evalhub.models import Assignment, Study, StudyStatus
from evalhub.services.gold import ERROR_GOLD_LINE, GOLD_FIELD, gold_read
from evalhub.services.judgments import judgment_submit
from evalhub.services.studies import ERROR_TOO_FEW_RATERS, study_create
from tests.evalhub.rating_fixtures import open_study, run_with_outputs
from tests.factories import ExpertFactory

pytestmark = pytest.mark.django_db


def test_the_create_form_preselects_a_runs_base_and_adapter(manager_client):
    outputs = run_with_outputs(prompts=2)
    html = manager_client.get(reverse("study_create") + f"?run={outputs.run.pk}").content.decode()
    for system in outputs.systems:
        assert f'value="{system.pk}" id="id_systems_' in html
        assert f'name="systems" value="{system.pk}" id' in html
    assert html.count("checked") >= 2


def test_creating_a_study_in_the_browser_makes_assignments_and_can_open_it(manager_client):
    outputs = run_with_outputs(prompts=3)
    raters = [ExpertFactory(), ExpertFactory()]
    gold = SimpleUploadedFile(
        "gold.jsonl", b'{"prompt": "q", "better": "right", "worse": "wrong", "reference": "r"}\n'
    )
    response = manager_client.post(
        reverse("study_create"),
        {
            "name": "Tone study",
            "run": outputs.run.pk,
            "systems": [s.pk for s in outputs.systems],
            "raters": [r.pk for r in raters],
            "overlap": 2,
            "criteria": "correctness, style",
            "guidelines": "Prefer short answers.",
            "show_reference": "on",
            "open_now": "on",
            "gold": gold,
        },
    )
    study = Study.objects.get(name="Tone study")
    assert response.status_code == 302 and response["Location"] == f"/studies/{study.pk}/"
    assert study.status == StudyStatus.OPEN and study.criteria == ["correctness", "style"]
    assert study.show_reference and study.comparisons.filter(is_gold=True).count() == 1
    assert Assignment.objects.filter(comparison__study=study).count() == 3 * 2 + 2


def test_a_refused_study_shows_the_reason_and_writes_nothing(manager_client):
    outputs = run_with_outputs(prompts=3)
    response = manager_client.post(
        reverse("study_create"),
        {
            "name": "Short of raters",
            "systems": [s.pk for s in outputs.systems],
            "raters": [ExpertFactory().pk],
            "overlap": 2,
        },
    )
    assert response.status_code == 422
    assert ERROR_TOO_FEW_RATERS.format(overlap=2, count=1) in response.content.decode()
    assert not Study.objects.exists()


def test_the_detail_page_shows_progress_gold_accuracy_and_median_time(manager_client):
    gold = gold_read(['{"prompt": "g", "better": "good", "worse": "bad"}'])
    study, (rater, _), _ = open_study(prompts=1, gold=gold)
    for assignment in rater.assignments.select_related("comparison", "left_output"):
        right_side = "a" if assignment.left_output.text == "good" else "b"
        choice = right_side if assignment.comparison.is_gold else "tie"
        judgment_submit(assignment=assignment, rater=rater, choice=choice, time_on_task_ms=1500)
    html = manager_client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert rater.username in html
    assert "1 of 1 (100%)" in html and "1.5 s" in html and "2 of 2" in html


def test_the_detail_page_counts_one_rater_in_the_singular(manager_client):
    study, _, _ = open_study(prompts=1, raters=1, overlap=1)
    html = manager_client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert "assignments, 1 rater</dd>" in html
    assert "every comparison to 1 rater</dd>" in html


def test_the_detail_page_links_to_the_analysis(manager_client):
    study, _, _ = open_study(prompts=1)
    html = manager_client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert f'href="{reverse("study_analysis", args=[study.pk])}"' in html


def test_status_buttons_are_post_forms_that_move_the_study(manager_client):
    study, _, _ = open_study(prompts=1)
    html = manager_client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert 'name="status" value="paused"' in html and 'name="status" value="closed"' in html
    response = manager_client.post(reverse("study_status", args=[study.pk]), {"status": "paused"})
    assert response.status_code == 302
    study.refresh_from_db()
    assert study.status == StudyStatus.PAUSED


def test_an_impossible_status_is_reported_not_applied(manager_client):
    outputs = run_with_outputs(prompts=1)
    study = study_create(name="Draft", systems=outputs.systems)
    response = manager_client.post(
        reverse("study_status", args=[study.pk]), {"status": "open"}, follow=True
    )
    assert "Add raters before opening the study." in response.content.decode()
    study.refresh_from_db()
    assert study.status == StudyStatus.DRAFT


def test_adding_raters_with_a_higher_overlap_gives_them_work(manager_client):
    study, _raters, _ = open_study(prompts=4)
    newcomer = ExpertFactory()
    response = manager_client.post(
        reverse("study_raters", args=[study.pk]), {"raters": [newcomer.pk], "overlap": 3}
    )
    assert response.status_code == 302
    assert newcomer.assignments.count() == 4


def test_adding_raters_below_the_overlap_shows_the_reason(manager_client):
    outputs = run_with_outputs(prompts=2)
    study = study_create(name="Empty", systems=outputs.systems, overlap=2)
    response = manager_client.post(
        reverse("study_raters", args=[study.pk]), {"raters": [ExpertFactory().pk]}
    )
    assert response.status_code == 422
    assert ERROR_TOO_FEW_RATERS.format(overlap=2, count=1) in response.content.decode()
    assert not Assignment.objects.exists()


def test_the_list_links_each_study(manager_client):
    study, _, _ = open_study(prompts=1)
    html = manager_client.get(reverse("study_list")).content.decode()
    assert reverse("study_detail", args=[study.pk]) in html and "0 of 2" in html


def test_a_bad_gold_upload_names_the_file_and_line_and_writes_nothing(manager_client):
    outputs = run_with_outputs(prompts=2)
    gold = SimpleUploadedFile("my-gold.jsonl", b'{"prompt": "q", "better": "x"}\n')
    response = manager_client.post(
        reverse("study_create"),
        {
            "name": "Gold study",
            "systems": [s.pk for s in outputs.systems],
            "overlap": 2,
            "gold": gold,
        },
    )
    assert response.status_code == 422
    expected = ERROR_GOLD_LINE.format(
        source="my-gold.jsonl", line=1, problem=GOLD_FIELD.format(field="worse")
    )
    assert escape(expected) in response.content.decode()
    assert not Study.objects.exists()


@pytest.mark.parametrize(
    ("experts", "overlap", "says"),
    [(0, 1, "No expert yet"), (1, 1, "1 active expert can rate"), (3, 2, "3 active experts")],
)
def test_the_new_study_form_defaults_to_an_overlap_the_experts_can_meet(
    manager_client, experts, overlap, says
):
    ExpertFactory.create_batch(experts)
    ExpertFactory(is_active=False)
    html = manager_client.get(reverse("study_create")).content.decode()
    assert f'name="overlap" value="{overlap}"' in html
    assert says in html
    if not experts:
        assert f'href="{reverse("person_create")}"' in html
