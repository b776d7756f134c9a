"""Nothing a rater receives tells which system wrote which response."""

import re
from html.parser import HTMLParser

import pytest
from django.core.cache import cache
from django.urls import reverse

from evalhub.models import Assignment, Output
from evalhub.selectors.rating import rater_next_assignment
from evalhub.services.studies import study_create, study_set_status
from tests.factories import (
    BaseModelFactory,
    DatasetFactory,
    ExpertFactory,
    FineTuneRunFactory,
    OutputFactory,
    PromptFactory,
    SystemFactory,
)

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
# Ids far from anything else on the page, so that finding one means it leaked.
FIRST_ID = 7_340_019_001


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    cache.clear()


@pytest.fixture
def blinded(client):
    model = BaseModelFactory(name="okapi-13b-instruct", source="okapi-13b-instruct")
    dataset = DatasetFactory(name="secret-dataset")
    run = FineTuneRunFactory(name="narwhal-finetune", dataset=dataset, base_model=model)
    base = SystemFactory(id=FIRST_ID, name="base:okapi-13b-instruct", kind="base", base_model=model)
    adapter = SystemFactory(id=FIRST_ID + 1, name="adapter:narwhal", kind="adapter", run=run)
    next_id = FIRST_ID + 10
    outputs = []
    for i in range(4):
        prompt = PromptFactory(id=next_id, dataset=dataset, reference=f"reference {i}")
        for system, text in ((base, "a reply"), (adapter, "another reply")):
            pk = next_id + 1 + len(outputs)
            outputs.append(OutputFactory(id=pk, system=system, prompt=prompt, text=f"{text} {i}"))
        next_id += 100
    raters = [ExpertFactory(), ExpertFactory()]
    study = study_create(
        name="Customer replies",
        systems=[base, adapter],
        raters=raters,
        run=run,
        criteria=["accuracy"],
        show_reference=True,
        seed=4,
    )
    study_set_status(study=study, status="open")
    client.force_login(raters[0])
    secrets = [
        base.name,
        adapter.name,
        run.name,
        model.name,
        dataset.name,
        "okapi",
        "narwhal",
        "adapter",
    ]
    ids = [str(o.pk) for o in outputs] + [str(base.pk), str(adapter.pk)]
    ids += [str(o.prompt_id) for o in outputs]
    return {"study": study, "rater": raters[0], "client": client, "secrets": secrets, "ids": ids}


def assert_blind(html: str, blinded: dict) -> None:
    lowered = html.lower()
    for secret in blinded["secrets"]:
        assert secret.lower() not in lowered, secret
    for leaked_id in blinded["ids"]:
        assert leaked_id not in html, leaked_id


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src", "action", "hx-post", "hx-get") and value:
                self.urls.append(value)


def test_rating_page_fragment_and_overview_name_no_system_run_model_or_id(blinded):
    client, study, rater = blinded["client"], blinded["study"], blinded["rater"]
    token = rater_next_assignment(study=study, rater=rater).token
    page = client.get(reverse("rate_item", args=[token])).content.decode()
    assert "Response A" in page and "Reference answer" in page
    assert_blind(page, blinded)

    fragment = client.post(reverse("rate_item", args=[token]), {"choice": "a"}, **HTMX)
    assert fragment.status_code == 200
    assert_blind(fragment.content.decode(), blinded)
    assert_blind(fragment["HX-Push-Url"], blinded)

    for url in (reverse("rate_study", args=[study.pk]), reverse("rate_home")):
        assert_blind(client.get(url).content.decode(), blinded)


def test_every_url_on_the_rating_page_is_a_route_or_the_raters_own_token(blinded):
    client, study, rater = blinded["client"], blinded["study"], blinded["rater"]
    token = rater_next_assignment(study=study, rater=rater).token
    parser = Links()
    parser.feed(client.get(reverse("rate_item", args=[token])).content.decode())
    allowed = {
        reverse("rate_item", args=[token]),
        reverse("rate_study", args=[study.pk]),
        reverse("rate_home"),
        reverse("home"),
        reverse("logout"),
    }
    for url in parser.urls:
        assert url in allowed or url.startswith("/static/"), url


def test_the_markup_does_not_depend_on_which_system_is_on_the_left(blinded):
    client, study, rater = blinded["client"], blinded["study"], blinded["rater"]
    assignment = rater_next_assignment(study=study, rater=rater)
    comparison = assignment.comparison
    url = reverse("rate_item", args=[assignment.token])

    def normalised(left: Output, right: Output) -> str:
        Assignment.objects.filter(pk=assignment.pk).update(left_output=left)
        html = client.get(url).content.decode()
        assert html.index(left.text) < html.index(right.text)
        html = html.replace(left.text, "@LEFT@").replace(right.text, "@RIGHT@")
        return re.sub(r"[A-Za-z0-9]{64}", "@CSRF@", html)  # per-request CSRF tokens

    one_way = normalised(comparison.output_a, comparison.output_b)
    other_way = normalised(comparison.output_b, comparison.output_a)
    assert one_way == other_way
