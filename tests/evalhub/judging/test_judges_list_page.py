"""The Judges page: every judge's definition, and the New judge form checked as ``judge_add``
checks (managers only; the permission matrix and the blinding crawl cover the other roles)."""

import pytest
from django.urls import reverse
from django.utils.html import escape

from evalhub.models import Judge
from evalhub.services.judging import ENV_INVALID, LIMIT_INVALID, URL_INVALID, judge_create
from tests.factories import StudyFactory

pytestmark = pytest.mark.django_db

FORM = {
    "name": "qwen-72b",
    "backend": "http",
    "model": "Qwen/Qwen2.5-72B-Instruct",
    "base_url": "http://gpu-box:8000/v1",
    "api_key_env": "VLLM_API_KEY",
    "max_tokens": "16",
    "temperature": "0",
    "timeout_s": "60",
    "max_retries": "3",
    "concurrency": "16",
    "token_budget": "2000000",
}


def test_the_page_lists_each_judge_with_backend_model_endpoint_key_variable_and_budget(
    manager_client,
):
    judge_create(
        name="remote",
        backend="http",
        model="served-model",
        base_url="http://gpu-box:8000/v1",
        api_key_env="VLLM_API_KEY",
        token_budget=5000,
    )
    judge_create(name="small")
    page = manager_client.get(reverse("judges")).content.decode()
    row = page[page.index('id="judge-remote"') :].split("</tr>")[0]
    for text in ("http", "served-model", "http://gpu-box:8000/v1", "$VLLM_API_KEY", "5000"):
        assert text in row
    small = page[page.index('id="judge-small"') :].split("</tr>")[0]
    assert "smollm2-135m" in small and "no limit" in small
    assert f'action="{reverse("judges")}"' in page


def test_the_form_defines_an_http_judge_and_the_page_says_so(manager_client, manager):
    response = manager_client.post(reverse("judges"), FORM, follow=True)
    judge = Judge.objects.get()
    assert (judge.backend, judge.base_url, judge.api_key_env) == (
        "http",
        "http://gpu-box:8000/v1",
        "VLLM_API_KEY",
    )
    assert (judge.concurrency, judge.token_budget, judge.created_by) == (16, 2_000_000, manager)
    assert "Judge qwen-72b defined (http, Qwen/Qwen2.5-72B-Instruct)" in response.content.decode()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"base_url": "gpu-box:8000"}, URL_INVALID.format(url="gpu-box:8000")),
        ({"api_key_env": "sk-abc 123"}, ENV_INVALID.format(name="sk-abc 123")),
        (
            {"max_retries": "11"},
            LIMIT_INVALID.format(field="max_retries", rule="between 0 and 10", value=11),
        ),
    ],
)
def test_a_refused_judge_is_shown_under_its_field_with_a_422_and_nothing_stored(
    manager_client, change, message
):
    response = manager_client.post(reverse("judges"), FORM | change)
    assert response.status_code == 422
    field = next(iter(change))
    form = response.context["form"]
    assert form.errors == {field: [message]}
    assert escape(message) in response.content.decode()
    assert not Judge.objects.exists()


def test_the_nav_and_the_study_pages_judge_block_link_to_the_page(manager_client):
    study = StudyFactory()
    page = manager_client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert page.count(f'href="{reverse("judges")}"') == 2  # the nav's and the judge block's
