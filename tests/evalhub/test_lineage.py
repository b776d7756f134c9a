"""Lineage: the sets a run learned from through its ancestors, whether a study's prompts
reached training, the lineage page, and studies of base vs v1 vs v2."""

import io
import re

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from evalhub.models import Study, SystemKind
from evalhub.reports.build import report_build
from evalhub.selectors.lineage import lineage_systems, study_leakage
from evalhub.selectors.outputs import evaluation_prompts, run_outputs
from tests.evalhub.lineage_fixtures import build_loop
from tests.factories import (
    DatasetFactory,
    ExampleFactory,
    FineTuneRunFactory,
    PromptFactory,
    StudyFactory,
    SystemFactory,
)
from trainer.datasets.pipeline import Row
from trainer.selectors.runs import evaluation_dataset, run_ancestors, run_root
from trainer.services.datasets import dataset_create_from_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def loop():
    return build_loop()


def test_a_run_walks_its_from_run_chain_to_the_first_run(loop):
    assert run_ancestors(run=loop.v2) == [loop.v2, loop.v1]
    assert run_root(run=loop.v2) == loop.v1
    assert run_root(run=loop.v1) == loop.v1


def test_a_dpo_run_is_judged_on_its_first_runs_test_prompts(loop):
    assert evaluation_dataset(run=loop.v1) == loop.dataset
    assert evaluation_dataset(run=loop.v2) == loop.dataset
    assert loop.v2.dataset != loop.dataset  # it trained on the preference set
    test_prompts = {p.pk for p in loop.test_prompts}
    assert (
        set(
            evaluation_prompts(dataset=evaluation_dataset(run=loop.v2)).values_list("pk", flat=True)
        )
        == test_prompts
    )
    v2_outputs = run_outputs(run=loop.v2).filter(system=loop.adapter_v2)
    assert {o.prompt_id for o in v2_outputs} == test_prompts


def test_test_prompts_never_reached_training_through_any_ancestor(loop):
    leakage = study_leakage(study=loop.test_study)
    assert (leakage.prompts, leakage.prompts_trained_on, leakage.through) == (10, 0, [])


def test_feedback_prompts_are_not_training_data_for_the_sft_run(loop):
    assert study_leakage(study=loop.feedback_study).prompts_trained_on == 0


def test_a_study_of_v2_on_the_feedback_prompts_is_caught_through_the_preference_set(loop):
    """v2 trained (DPO) on a set built from these prompts: every one of them leaked."""
    study = StudyFactory(name="feedback again")
    study.systems.set([loop.adapter_v1, loop.adapter_v2])
    for prompt in loop.feedback_prompts:
        study.comparisons.create(
            prompt=prompt,
            output_a=loop.adapter_v1.outputs.get(prompt=prompt),
            output_b=loop.adapter_v2.outputs.get(prompt=prompt),
        )
    leakage = study_leakage(study=study)
    assert leakage.prompts_trained_on == 4
    [through] = leakage.through
    assert (through.run, through.method, through.prompts) == (loop.v2.pk, "dpo", 4)
    assert through.preference_set == "support-prefs v1"
    assert through.dataset == "support-prefs-v1"


def test_a_prompt_copied_into_another_dataset_is_caught_through_the_first_run(loop):
    """The study's prompt lives in another dataset, but its conversation is one v1 trained on:
    a study of v2 (whose ancestor is v1) finds it."""
    trained = loop.dataset.examples.filter(split="train").first()
    elsewhere = DatasetFactory(name="copied")
    prompt = PromptFactory(dataset=elsewhere, messages=trained.messages[:-1])
    fresh = PromptFactory(dataset=elsewhere)
    other = SystemFactory(name="someone else")
    study = StudyFactory(name="copied prompts")
    study.systems.set([loop.adapter_v2, other])
    for p in (prompt, fresh):
        study.comparisons.create(
            prompt=p,
            output_a=loop.adapter_v2.outputs.create(prompt=p, text="x"),
            output_b=other.outputs.create(prompt=p, text="y"),
        )
    leakage = study_leakage(study=study)
    assert (leakage.prompts, leakage.prompts_trained_on) == (2, 1)
    assert [(t.run, t.preference_set) for t in leakage.through] == [(loop.v1.pk, None)]


def test_a_new_run_on_a_set_holding_test_prompts_is_seen_at_once(manager_client, loop):
    """Nothing is cached: once a set holding two test prompts is stored through the import
    service and an adapter trained on it joins the study, the next page view says so."""
    url = reverse("study_detail", args=[loop.test_study.pk])
    assert "No prompt of this study reached training" in manager_client.get(url).content.decode()
    rows = [
        Row([*p.messages, {"role": "assistant", "content": "learnt"}]) for p in loop.test_prompts
    ]
    leaky = dataset_create_from_rows(
        name="leaky", rows=rows[:2], provenance={}, validation_share=0.5
    )
    v3 = FineTuneRunFactory(name="v3", dataset=leaky, from_run=loop.v2, method="dpo")
    loop.test_study.systems.add(SystemFactory(kind=SystemKind.ADAPTER, run=v3))

    leakage = study_leakage(study=loop.test_study)
    assert (leakage.prompts, leakage.prompts_trained_on) == (10, 2)
    assert [(t.run, t.prompts) for t in leakage.through] == [(v3.pk, 2)]
    body = manager_client.get(url).content.decode()
    assert "2 of 10 prompts of this study were trained on" in " ".join(
        re.sub(r"<[^>]+>", " ", body).split()
    )


def test_a_prompt_edited_into_a_training_conversation_is_caught(loop):
    """The stored hash follows the messages on every save."""
    prompt = loop.test_prompts[0]
    trained = loop.dataset.examples.filter(split="train").first()
    prompt.messages = trained.messages[:-1]
    prompt.save(update_fields=["messages"])
    assert study_leakage(study=loop.test_study).prompts_trained_on == 1


def test_the_study_page_says_no_prompt_reached_training(manager_client, loop):
    page = manager_client.get(reverse("study_detail", args=[loop.test_study.pk]))
    assert "No prompt of this study reached training" in page.content.decode()


def test_the_study_page_warns_with_the_count_run_and_set(manager_client, loop):
    study = StudyFactory(name="feedback on v2")
    study.systems.set([loop.adapter_v2, loop.base])
    for prompt in loop.feedback_prompts[:3]:
        study.comparisons.create(
            prompt=prompt,
            output_a=loop.base.outputs.get(prompt=prompt),
            output_b=loop.adapter_v2.outputs.get(prompt=prompt),
        )
    body = manager_client.get(reverse("study_detail", args=[study.pk])).content.decode()
    text = " ".join(re.sub(r"<[^>]+>", " ", body).split())
    assert "No prompt of this study reached training" not in text
    assert "3 of 3 prompts of this study were trained on" in text
    assert "3 through dpo-v2 (dpo) on preference set support-prefs v1" in text


def test_the_report_json_carries_the_leakage(loop):
    report = report_build(loop.test_study, resamples=20, bt_resamples=20, model_resamples=20)
    assert report["leakage"] == {"prompts": 10, "prompts_trained_on": 0, "through": []}


def test_a_study_of_v2_offers_base_v1_and_v2(loop):
    assert lineage_systems(run=loop.v2) == [loop.base, loop.adapter_v1, loop.adapter_v2]
    assert lineage_systems(run=loop.v1) == [loop.base, loop.adapter_v1]


def test_the_new_study_form_preselects_base_v1_and_v2(manager_client, loop):
    body = manager_client.get(reverse("study_create") + f"?run={loop.v2.pk}").content.decode()
    checked = set(re.findall(r'name="systems" value="(\d+)"[^>]*checked', body))
    assert checked == {str(s.pk) for s in (loop.base, loop.adapter_v1, loop.adapter_v2)}


def test_create_study_compares_base_v1_and_v2_by_default_for_v2(loop):
    call_command(
        "create_study",
        "--run",
        str(loop.v2.pk),
        "--name",
        "three",
        "--overlap",
        "1",
        stdout=io.StringIO(),
    )
    study = Study.objects.get(name="three")
    assert set(study.systems.all()) == {loop.base, loop.adapter_v1, loop.adapter_v2}
    # every pair of the three on every test prompt; the feedback prompts, which have v2 outputs
    # too, stay out of a study on the test split
    assert study.comparisons.count() == 3 * len(loop.test_prompts)


def test_the_analysis_page_ranks_three_systems_with_intervals(manager_client, loop):
    body = manager_client.get(reverse("study_analysis", args=[loop.test_study.pk])).content.decode()
    section = body[body.index('<section id="ranking">') :]
    section = section[: section.index("</section>")]
    names = re.findall(r"<td>(adapter:v2|adapter:v1|base:smollm)</td>", section)
    assert names == ["adapter:v2", "adapter:v1", "base:smollm"]  # v2 won most, base least
    intervals = re.findall(
        r'systems\.\d\.interval" data-low="([-\d.]+)" data-high="([-\d.]+)"', section
    )
    assert len(intervals) == 3 and all(float(low) < float(high) for low, high in intervals)


def test_a_study_of_v2_follows_v2_against_the_first_runs_base(manager_client, loop):
    """The verdict on the study page monitors v2 against the base of the chain's first run."""
    body = manager_client.get(reverse("study_detail", args=[loop.test_study.pk])).content.decode()
    assert "Win rate of adapter:v2 against base:smollm" in body


def test_the_lineage_page_draws_dataset_runs_studies_and_sets(manager_client, loop):
    body = manager_client.get(reverse("dataset_lineage", args=["support"])).content.decode()
    text = " ".join(re.sub(r"<[^>]+>", " ", body).split())
    assert "sft-v1 (supervised fine-tuning, succeeded)" in text
    assert "best validation loss 1.2345" in text
    assert "feedback round" in text and "builds →" in text
    assert "support-prefs v1" in text and "4 pairs, 0 corrections" in text
    # v2 trains on the set, judged in the test study; it also starts from v1 (a reference)
    assert "reward accuracy 0.750" in text
    assert text.count("dpo-v2 (direct preference optimisation") == 2
    assert text.count("(shown above)") == 1
    assert "test round adapter:v2 vs base:smollm: win rate 0.750" in text
    assert f'href="{reverse("run_detail", args=[loop.v2.pk])}"' in body
    assert f'href="{reverse("study_detail", args=[loop.test_study.pk])}"' in body
    assert f'href="{reverse("preference_detail", args=["support-prefs", 1])}"' in body
    order = [text.index(s) for s in ("sft-v1", "feedback round", "support-prefs v1", "dpo-v2")]
    assert order == sorted(order)


def test_the_lineage_page_is_linked_from_the_dataset_and_run_pages(manager_client, loop):
    url = reverse("dataset_lineage", args=["support"])
    dataset_page = manager_client.get(reverse("dataset_detail", args=["support"]))
    run_page = manager_client.get(reverse("run_detail", args=[loop.v2.pk]))
    assert url in dataset_page.content.decode()
    assert f"{url}#run-{loop.v2.pk}" in run_page.content.decode()


def test_a_dataset_without_runs_has_a_lineage_of_itself(manager_client):
    ExampleFactory(dataset=DatasetFactory(name="lonely"))
    FineTuneRunFactory()  # a run on another dataset stays off the page
    body = manager_client.get(reverse("dataset_lineage", args=["lonely"])).content.decode()
    assert "1 examples" in body and "lineage-run" not in body


def test_the_lineage_page_is_for_managers_only(expert_client, loop):
    url = reverse("dataset_lineage", args=["support"])
    assert expert_client.get(url).status_code == 403
    assert Client().get(url).status_code == 302


def test_the_run_page_says_which_sets_the_run_learned_from_through_its_ancestors(
    manager_client, loop
):
    body = manager_client.get(reverse("run_detail", args=[loop.v2.pk])).content.decode()
    text = re.sub(r"\s+([),])", r"\1", " ".join(re.sub(r"<[^>]+>", " ", body).split()))
    # support: its 6 train examples (feedback and test never count); the set: all 4 rows
    assert (
        "learned from support (6 rows, through sft-v1), preference set support-prefs v1 (4 rows)"
        in text
    )
    assert f'href="{reverse("preference_detail", args=["support-prefs", 1])}"' in body
