import pytest
from django.core.cache import cache
from django.urls import reverse

from evalhub.models import Judgment, StudyStatus
from evalhub.selectors.rating import rater_next_assignment
from evalhub.services.judgments import ERROR_CHOICE
from evalhub.services.studies import study_set_status
from evalhub.views.rating import ERROR_TOO_MANY_SUBMITS, NOTICE_NOT_OPEN
from tests.evalhub.rating_fixtures import open_study

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    # The submit counter lives in the cache, and rolled-back tests reuse user ids.
    cache.clear()


@pytest.fixture
def rating(client):
    study, (rater, _other), _outputs = open_study(prompts=3, criteria=["correctness", "style"])
    client.force_login(rater)
    return study, rater, client


def item_url(study, rater) -> str:
    return reverse("rate_item", args=[rater_next_assignment(study=study, rater=rater).token])


def test_next_redirects_to_the_first_item_in_the_raters_order(rating):
    study, rater, client = rating
    first = rater.assignments.order_by("position").first()
    response = client.get(reverse("rate_next", args=[study.pk]))
    assert response.status_code == 302 and response["Location"] == f"/rate/{first.token}/"


def test_the_rating_page_shows_prompt_both_responses_and_progress(rating):
    study, rater, client = rating
    response = client.get(item_url(study, rater))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Response A" in html and "Response B" in html
    assert "1 of 3" in html and "Question number" in html
    assert 'name="score-1-b"' in html and "js/rate.js" in html


def test_a_plain_post_records_and_redirects_to_the_next_item(rating):
    study, rater, client = rating
    url = item_url(study, rater)
    response = client.post(
        url,
        {
            "choice": "b",
            "score-0-a": "2",
            "score-0-b": "5",
            "comment": "B is right",
            "time_on_task_ms": "4200",
        },
    )
    assert response.status_code == 302
    following = rater_next_assignment(study=study, rater=rater)
    assert response["Location"] == f"/rate/{following.token}/"
    judgment = Judgment.objects.get()
    assert judgment.choice == "b" and judgment.comment == "B is right"
    assert judgment.time_on_task_ms == 4200
    assert judgment.criterion_scores == {"correctness": {"a": 2, "b": 5}}


def test_an_htmx_post_returns_the_next_item_fragment_and_pushes_its_url(rating):
    study, rater, client = rating
    response = client.post(item_url(study, rater), {"choice": "tie"}, **HTMX)
    following = rater_next_assignment(study=study, rater=rater)
    html = response.content.decode()
    assert response.status_code == 200
    assert response["HX-Push-Url"] == f"/rate/{following.token}/"
    assert html.lstrip().startswith('<section id="rate-item"') and "<html" not in html
    assert f'hx-post="/rate/{following.token}/"' in html and "2 of 3" in html


def test_submit_and_next_stays_within_its_query_budget(rating, django_assert_max_num_queries):
    """Session, user, the item, the judgment's transaction (5), the next item with its texts,
    judgment and study, one count for place and progress: 11. benchmarks/load_rating.py
    measured 16 at first, the rating page's cost under load."""
    study, rater, client = rating
    url = item_url(study, rater)
    with django_assert_max_num_queries(11):
        response = client.post(url, {"choice": "a"}, **HTMX)
    assert response.status_code == 200 and "2 of 3" in response.content.decode()


def test_a_post_without_a_choice_is_refused_with_the_item_again(rating):
    study, rater, client = rating
    url = item_url(study, rater)
    response = client.post(url, {"comment": "kept"}, **HTMX)
    assert response.status_code == 422
    html = response.content.decode()
    assert ERROR_CHOICE in html and ">kept</textarea>" in html
    assert not Judgment.objects.exists()


def test_the_last_submit_leads_to_the_done_overview(rating):
    study, rater, client = rating
    for _ in range(2):
        client.post(item_url(study, rater), {"choice": "a"})
    last = item_url(study, rater)
    plain = client.post(last, {"choice": "a"})
    assert plain["Location"] == reverse("rate_study", args=[study.pk])
    again = client.post(last, {"choice": "b"}, **HTMX)
    assert again["HX-Redirect"] == reverse("rate_study", args=[study.pk])
    page = client.get(reverse("rate_study", args=[study.pk])).content.decode()
    assert "All done" in page and page.count("Revise") == 3


def test_a_judged_item_opens_prefilled_and_a_revision_updates_it(rating):
    study, rater, client = rating
    url = item_url(study, rater)
    client.post(url, {"choice": "a", "score-1-a": "4", "flagged": "on", "flag_reason": "typo"})
    html = client.get(url).content.decode()
    assert 'value="a" required checked' in html and "Save revision" in html
    assert '<option value="4" selected>' in html and 'value="typo"' in html
    client.post(url, {"choice": "both_bad"})
    judgment = Judgment.objects.get()
    assert (judgment.choice, judgment.revisions, judgment.flagged) == ("both_bad", 1, False)


def test_too_many_submits_in_a_minute_get_429(rating, settings):
    settings.EVALHUB_RATING_SUBMITS_PER_MINUTE = 2
    study, rater, client = rating
    url = item_url(study, rater)
    assert client.post(url, {"choice": "a"}).status_code == 302
    assert client.post(url, {"choice": "a"}).status_code == 302
    response = client.post(url, {"choice": "b"}, **HTMX)
    assert response.status_code == 429 and ERROR_TOO_MANY_SUBMITS in response.content.decode()
    assert Judgment.objects.get().choice == "a"


@pytest.mark.parametrize("status", [StudyStatus.PAUSED, StudyStatus.CLOSED])
def test_a_study_that_is_not_open_sends_the_rater_to_the_overview(rating, status):
    study, rater, client = rating
    url = item_url(study, rater)
    study_set_status(study=study, status=status)
    for response in (client.get(url), client.post(url, {"choice": "a"})):
        assert response["Location"] == reverse("rate_study", args=[study.pk])
    assert client.post(url, {"choice": "a"}, **HTMX)["HX-Redirect"] == reverse(
        "rate_study", args=[study.pk]
    )
    overview = client.get(reverse("rate_study", args=[study.pk])).content.decode()
    assert NOTICE_NOT_OPEN[status] in overview
    assert not Judgment.objects.exists()


def test_rate_home_links_each_study_to_its_queue(rating):
    study, _rater, client = rating
    html = client.get(reverse("rate_home")).content.decode()
    assert reverse("rate_next", args=[study.pk]) in html
    assert reverse("rate_study", args=[study.pk]) in html


def test_model_output_is_shown_as_text_never_as_markup(client):
    study, (rater, _), outputs = open_study(prompts=1)
    nasty = '<script>alert("x")</script><img src=x onerror=alert(1)>' + "W" * 3000
    outputs.base.outputs.update(text=nasty)
    client.force_login(rater)
    html = client.get(item_url(study, rater)).content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "W" * 3000 in html  # kept whole; CSS wraps it
