"""The form check on a stored study: the selector, the warning on the study page, the report's
``recognisability``; experts are refused wherever it appears."""

import random

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from evalhub.models import Output, Study, SystemKind
from evalhub.reports.build import report_build
from evalhub.selectors.recognisability import recognisability_block
from evalhub.services.gold import GoldItem
from evalhub.services.studies import study_create
from tests.evalhub.analysis.answers import anything, house, prose
from tests.evalhub.rating_fixtures import run_with_outputs
from tests.factories import ExpertFactory, ManagerFactory

pytestmark = pytest.mark.django_db
PROMPTS = 24
WARNING = b"Raters may tell the systems apart by form alone"
GOLD_WARNING = b"Gold items stand out"


def study_of(adapter_writes, base_writes, gold: list[GoldItem] = ()) -> Study:
    """A study of 24 prompts whose adapter and base answers come from the given writers."""
    outputs = run_with_outputs(prompts=PROMPTS)
    rng = random.Random(3)
    writers = {SystemKind.ADAPTER: adapter_writes, SystemKind.BASE: base_writes}
    for output in Output.objects.filter(system__in=outputs.systems).select_related("system"):
        output.text = writers[output.system.kind](rng)
        output.save(update_fields=["text"])
    return study_create(
        name="Conversions",
        systems=outputs.systems,
        raters=[ExpertFactory()],
        overlap=1,
        run=outputs.run,
        gold=list(gold),
        seed=5,
    )


def manager_page(study: Study) -> bytes:
    client = Client()
    client.force_login(ManagerFactory())
    response = client.get(reverse("study_detail", args=[study.pk]))
    assert response.status_code == 200
    return response.content


def gold_items(better, worse, count: int = 7) -> list[GoldItem]:
    rng = random.Random(4)
    return [GoldItem(f"Gold question {i}?", better(rng), worse(rng)) for i in range(count)]


def test_a_house_format_against_prose_warns_the_manager_with_the_accuracy_and_telltales():
    study = study_of(house, prose)
    block = recognisability_block(study=study)
    assert block["pairs"] == PROMPTS and block["accuracy"] == 1.0 and block["warn"]
    assert block["adapter"] == study.systems.get(kind=SystemKind.ADAPTER).name
    page = manager_page(study)
    assert WARNING in page
    assert f"picks {block['adapter']}'s answer in 100 % of pairs".encode() in page
    low = round(block["interval"]["low"] * 100)
    assert f"[{low}, 100]".encode() in page
    for telltale in block["telltales"]:
        assert telltale["feature"].encode() in page


def test_answers_of_one_form_on_both_sides_bring_no_warning():
    study = study_of(anything, anything)
    block = recognisability_block(study=study)
    assert not block["warn"] and block["interval"]["low"] < 0.5
    assert WARNING not in manager_page(study)


def test_gold_pairs_with_both_answers_in_the_house_format_are_named_on_the_page():
    study = study_of(house, prose, gold=gold_items(house, house, count=5))
    gold = recognisability_block(study=study)["gold"]
    assert [item["number"] for item in gold["standing_out"]] == [1, 2, 3, 4, 5]
    assert gold["standing_out"][0]["prompt"] == "Gold question 0?"
    page = manager_page(study)
    assert GOLD_WARNING in page and b"Gold item 5: Gold question 4?" in page


def test_gold_pairs_whose_better_answer_always_has_the_adapters_form_are_called_out():
    study = study_of(house, prose, gold=gold_items(house, prose))
    gold = recognisability_block(study=study)["gold"]
    assert gold["standing_out"] == [] and gold["warn_better_form"]
    page = manager_page(study)
    assert GOLD_WARNING not in page
    assert b"In every gold pair that looks real, the better answer has adapter" in page


def test_a_regenerated_output_is_checked_again_not_read_from_the_cache():
    study = study_of(house, prose)
    assert recognisability_block(study=study)["accuracy"] == 1.0
    rng = random.Random(6)
    for output in Output.objects.filter(system__kind=SystemKind.ADAPTER):
        output.text = prose(rng)
        output.save(update_fields=["text"])
    assert recognisability_block(study=study)["accuracy"] < 0.9


def test_the_report_carries_the_check():
    cache.clear()
    study = study_of(house, prose)
    report = report_build(study, include_judgments=False, resamples=50, bt_resamples=20)
    assert report["recognisability"] == recognisability_block(study=study)
    assert report["recognisability"]["warn"]


def test_too_few_comparisons_give_no_check_and_no_warning():
    outputs = run_with_outputs(prompts=4)
    study = study_create(
        name="Small", systems=outputs.systems, raters=[ExpertFactory()], overlap=1, seed=1
    )
    assert recognisability_block(study=study) is None
    assert WARNING not in manager_page(study)


def test_experts_are_refused_wherever_it_appears():
    study = study_of(house, prose)
    client = Client()
    client.force_login(study.comparisons.first().assignments.first().rater)
    for path in (
        reverse("study_detail", args=[study.pk]),
        reverse("study_report", args=[study.pk, "json"]),
    ):
        assert client.get(path).status_code == 403, path
