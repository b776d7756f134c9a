"""Adaptive allocation through the services, pages and API: draws give out the judgments,
blinding, balance and gold hold, the budget caps it, and the verdict reads the draws."""

import re
from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from evalhub.analysis.allocation import EXPLORATION, probabilities, study_design
from evalhub.analysis.sequential import ADAPTER_BETTER
from evalhub.models import Allocation, Assignment, Draw, Study, StudyStatus
from evalhub.selectors.studies import (
    REASON_ADAPTIVE,
    allocation_budget,
    ppi_block,
    sequential_block,
    study_monitored_pair,
    study_sequential,
)
from evalhub.services.allocation import allocation_next
from evalhub.services.gold import GoldItem
from evalhub.services.judgments import judgment_submit
from evalhub.services.studies import (
    ERROR_ADAPTIVE_AT_LARGE,
    ERROR_ADAPTIVE_SYSTEMS,
    StudyError,
    study_create,
)
from tests.evalhub.rating_fixtures import open_study, run_with_outputs
from tests.factories import ExpertFactory, ManagerFactory, OutputFactory, SystemFactory

pytestmark = pytest.mark.django_db


def adaptive(prompts: int = 12, raters: int = 3, **kwargs):
    return open_study(prompts=prompts, raters=raters, allocation=Allocation.ADAPTIVE, **kwargs)


def judge(assignment: Assignment, *, adapter_wins: bool = True) -> None:
    adapter, _ = study_monitored_pair(study=assignment.comparison.study)
    left_is_adapter = assignment.left_output.system_id == adapter.pk
    choice = "a" if left_is_adapter == adapter_wins else "b"
    judgment_submit(assignment=assignment, rater=assignment.rater, choice=choice)


def next_for(study, rater) -> Assignment | None:
    allocation_next(study=study, rater=rater)
    return (
        Assignment.objects.filter(comparison__study=study, rater=rater, judgment__isnull=True)
        .select_related("left_output", "comparison__study")
        .order_by("position")
        .first()
    )


def test_an_adaptive_study_gives_out_nothing_until_a_rater_asks_then_one_item_each_time():
    study, (ada, bob, cy), _ = adaptive()
    assert not Assignment.objects.filter(comparison__study=study).exists()
    assert set(study.raters.all()) == {ada, bob, cy}
    first = next_for(study, ada)
    assert first is not None and first.rater == ada
    # Nothing more while an item is due: asking again draws nothing.
    draws = Draw.objects.filter(study=study).count()
    assert next_for(study, ada) == first
    assert Draw.objects.filter(study=study).count() == draws
    numbers = list(Draw.objects.filter(study=study).values_list("number", flat=True))
    assert numbers == list(range(len(numbers)))


def test_each_draw_keeps_the_calibrated_prediction_it_was_made_with():
    study, (ada,), _ = adaptive(raters=1)  # every draw lands on her
    first = next_for(study, ada)
    predictions = dict(study.comparisons.filter(is_gold=False).values_list("id", "prediction"))
    predictions = {k: 0.5 if v is None else v for k, v in predictions.items()}
    made = Draw.objects.filter(study=study).order_by("number")
    # Before any judgment the metric is taken as it is.
    assert [(d.prediction, d.centre) for d in made] == [
        (predictions[d.assignment.comparison_id], sum(predictions.values()) / 12) for d in made
    ]
    judge(first)
    before = made.count()
    next_for(study, ada)
    later = Draw.objects.filter(study=study, number__gte=before)
    expected = study_design(predictions, [(first.comparison_id, 1.0)])[1].calibrated
    items = sorted(predictions)
    assert later.exists()
    for d in later:
        assert d.prediction == pytest.approx(expected[items.index(d.assignment.comparison_id)])
        assert d.centre == pytest.approx(expected.mean())


def test_no_rater_sees_a_comparison_twice_and_each_sees_each_side_evenly():
    study, raters, _ = adaptive(prompts=6, raters=3)
    for _ in range(8):
        for rater in raters:
            item = next_for(study, rater)
            if item is not None:
                judge(item)
    cells = Assignment.objects.filter(comparison__study=study)
    pairs = Counter(cells.values_list("comparison_id", "rater_id"))
    assert max(pairs.values()) == 1
    adapter, base = study_monitored_pair(study=study)
    for rater in raters:
        lefts = Counter(cells.filter(rater=rater).values_list("left_output__system_id", flat=True))
        assert abs(lefts[adapter.pk] - lefts[base.pk]) <= 1
    # Some draws landed on cells judged before and cost nothing.
    assert Draw.objects.filter(study=study).count() >= cells.count()


def test_the_budget_is_what_the_uniform_study_would_ask():
    study, raters, _ = adaptive(prompts=3, raters=2, overlap=2)
    assert allocation_budget(study=study) == 6
    item = next_for(study, raters[0])
    judge(item, adapter_wins=False)
    assert sequential_block(study=study)["judgments_left"] == 5
    for _ in range(10):
        for rater in raters:
            item = next_for(study, rater)
            if item is not None:
                judge(item, adapter_wins=False)
    assert Assignment.objects.filter(comparison__study=study).count() == 6
    assert all(next_for(study, rater) is None for rater in raters)
    assert sequential_block(study=study)["judgments_left"] == 0


def test_the_verdict_reads_the_draws_and_a_self_stopping_study_pauses():
    study, raters, _ = adaptive(prompts=30, raters=2, overlap=2, stop_when_decided=True)
    rounds = 0
    while study.status == StudyStatus.OPEN and rounds < 60:
        for rater in raters:
            if study.status != StudyStatus.OPEN:  # decided by the other rater's judgment
                break
            item = next_for(study, rater)
            if item is not None:
                judge(item)
            study.refresh_from_db()
        rounds += 1
    state = study_sequential(study=study)
    assert state.verdict == ADAPTER_BETTER
    assert study.status == StudyStatus.PAUSED and study.stopped_at == state.judgments
    judged_draws = Draw.objects.filter(study=study, assignment__judgment__isnull=False)
    assert state.units == judged_draws.count()
    judged = Assignment.objects.filter(comparison__study=study, judgment__isnull=False)
    assert state.judgments == judged.count()
    assert state.interval[0] > 0.5
    # Fewer judgments than the uniform study's 60.
    assert state.judgments < allocation_budget(study=study)


def test_predictions_are_fixed_from_the_metric_at_creation():
    outputs = run_with_outputs(prompts=4)
    for index, prompt in enumerate(outputs.prompts):
        for system, score in ((outputs.adapter, 0.2 + 0.1 * index), (outputs.base, 0.3)):
            output = system.outputs.get(prompt=prompt)
            output.metrics = {"rougeL": score}
            output.save()
    study = study_create(
        name="Adaptive",
        systems=outputs.systems,
        raters=[ExpertFactory(), ExpertFactory()],
        run=outputs.run,
        allocation=Allocation.ADAPTIVE,
        seed=3,
    )
    predictions = dict(study.comparisons.values_list("prompt_id", "prediction"))
    ordered = [predictions[p.pk] for p in outputs.prompts]
    assert ordered == sorted(ordered) and ordered[0] < 0.5 < ordered[-1]
    # Where the metric and the experts disagree, the next draw is likelier.
    before = probabilities(dict(study.comparisons.values_list("id", "prediction")), [])
    assert max(before.values()) == pytest.approx(min(before.values()))
    assert min(before.values()) >= EXPLORATION / 4


def test_gold_keeps_its_place_in_the_queue():
    gold = [GoldItem(prompt=f"Gold {i}?", better="4", worse="5") for i in range(2)]
    study, (ada, _), _ = adaptive(prompts=8, raters=2, overlap=2, gold=gold)
    positions = sorted(
        Assignment.objects.filter(comparison__study=study, rater=ada).values_list(
            "position", flat=True
        )
    )
    # Share 8 × 2 / 2 = 8 regular items and 2 gold: gold at the 4th and 7th places.
    assert positions == [3, 6]
    served = []
    for _ in range(10):
        item = next_for(study, ada)
        if item is None:
            break
        served.append(item.comparison.is_gold)
        judge(item) if not item.comparison.is_gold else judgment_submit(
            assignment=item, rater=ada, choice="a"
        )
    assert served[:7] == [False, False, False, True, False, False, True]


def test_adaptive_studies_compare_two_systems_for_their_own_raters():
    outputs = run_with_outputs(prompts=2)
    third = SystemFactory()
    for prompt in outputs.prompts:
        OutputFactory(system=third, prompt=prompt, text="A third answer.")
    with pytest.raises(StudyError, match=re.escape(ERROR_ADAPTIVE_SYSTEMS.format(count=3))):
        study_create(
            name="Three", systems=[*outputs.systems, third], allocation=Allocation.ADAPTIVE
        )
    with pytest.raises(StudyError) as error:
        study_create(
            name="Two",
            systems=outputs.systems,
            allocation=Allocation.ADAPTIVE,
            raters_at_large=True,
        )
    assert str(error.value) == ERROR_ADAPTIVE_AT_LARGE


def test_the_prediction_powered_interval_steps_aside_with_its_reason():
    study, _, _ = adaptive(prompts=4, raters=2)
    assert ppi_block(study=study)["reason"] == REASON_ADAPTIVE


def test_a_rater_with_nothing_yet_is_sent_to_a_drawn_item_on_the_page_and_over_the_api():
    study, (ada, bob), _ = adaptive(prompts=4, raters=2)
    page = Client()
    page.force_login(ada)
    response = page.get(reverse("rate_next", args=[study.pk]))
    assert response.status_code == 302
    token = response["Location"].rstrip("/").rsplit("/", 1)[-1]
    assert Assignment.objects.get(token=token).rater == ada

    api = Client()
    api.force_login(bob)
    listed = api.get("/api/assignments/", {"study": study.pk, "pending": "true"}).json()
    tokens = [row["token"] for row in listed["results"]]
    assert tokens and all(Assignment.objects.get(token=t).rater == bob for t in tokens)


def test_managers_create_adaptive_studies_from_the_form_the_command_and_the_api():
    outputs = run_with_outputs(prompts=3)
    expert = ExpertFactory()
    manager = Client()
    manager.force_login(ManagerFactory())
    response = manager.post(
        reverse("study_create"),
        {
            "name": "From the form",
            "systems": [s.pk for s in outputs.systems],
            "raters": [expert.pk],
            "overlap": 1,
            "equivalence_margin": 0.05,
            "allocation": "adaptive",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    study = Study.objects.get(name="From the form")
    assert study.allocation == Allocation.ADAPTIVE
    page = manager.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert "adaptive: each rater" in page

    call_command(
        "create_study",
        "--run", str(outputs.run.pk), "--raters", expert.username,
        "--allocation", "adaptive", "--name", "From the command", stdout=StringIO(),
    )  # fmt: skip
    assert Study.objects.get(name="From the command").allocation == Allocation.ADAPTIVE

    body = {
        "name": "From the API",
        "systems": [s.pk for s in outputs.systems],
        "raters": [expert.username],
        "allocation": "adaptive",
    }
    created = manager.post("/api/studies/", body, content_type="application/json")
    assert created.status_code == 201, created.content
    assert created.json()["allocation"] == "adaptive"
    refused = manager.post(
        "/api/studies/", {**body, "name": "Bad", "allocation": "greedy"},
        content_type="application/json",
    )  # fmt: skip
    assert refused.status_code == 400 and "allocation" in refused.json()
