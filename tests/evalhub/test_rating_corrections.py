"""The rater's better answer on the rating page: folded away until wanted, stored with the
judgment, prefilled when revising, refused with its own message when too long."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from evalhub.middleware import MESSAGE as NUL_MESSAGE
from evalhub.models import Judgment
from evalhub.selectors.rating import rater_next_assignment
from tests.evalhub.rating_fixtures import open_study

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
FOLDED = '<details class="rate-correction">'
OPEN = '<details class="rate-correction" open>'
TOO_LONG = "A better answer is limited to 10,000 characters; yours has 10,001."


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    cache.clear()


@pytest.fixture
def rating(client):
    study, (rater, _other), _outputs = open_study(prompts=3)
    client.force_login(rater)
    url = reverse("rate_item", args=[rater_next_assignment(study=study, rater=rater).token])
    return client, url


def test_a_new_item_offers_the_better_answer_folded_away_and_empty(rating):
    client, url = rating
    html = client.get(url).content.decode()
    assert FOLDED in html and OPEN not in html
    assert "<summary>Write a better answer (optional)</summary>" in html
    assert '<label for="correction">' in html
    assert 'aria-describedby="correction-help"></textarea>' in html


def test_a_plain_post_stores_the_better_answer_and_the_item_reopens_with_it(rating):
    client, url = rating
    sent = client.post(url, {"choice": "a", "correction": "  The capital is Paris.\r\n"})
    assert sent.status_code == 302
    assert Judgment.objects.get().correction == "The capital is Paris."
    html = client.get(url).content.decode()
    assert OPEN in html and ">The capital is Paris.</textarea>" in html


def test_a_revision_edits_the_better_answer_and_an_emptied_one_is_removed(rating):
    client, url = rating
    client.post(url, {"choice": "a", "correction": "Paris."})
    client.post(url, {"choice": "a", "correction": "Paris, France."}, **HTMX)
    judgment = Judgment.objects.get()
    assert (judgment.correction, judgment.revisions) == ("Paris, France.", 1)
    client.post(url, {"choice": "a", "correction": ""})
    assert Judgment.objects.get().correction == ""
    assert FOLDED in client.get(url).content.decode()


def test_a_too_long_better_answer_is_refused_open_with_its_message_and_kept(rating):
    client, url = rating
    text = "x" * 10_001
    response = client.post(url, {"choice": "a", "correction": text}, **HTMX)
    assert response.status_code == 422
    html = response.content.decode()
    assert OPEN in html and TOO_LONG in html
    assert 'aria-invalid="true" autofocus>' + text + "</textarea>" in html
    assert 'id="correction-error"' in html
    assert not Judgment.objects.exists()


def test_a_nul_in_the_better_answer_is_a_400_that_stores_nothing(rating):
    client, url = rating
    response = client.post(url, {"choice": "a", "correction": "Paris\x00"})
    assert response.status_code == 400
    assert response.content.decode() == NUL_MESSAGE
    assert not Judgment.objects.exists()


def test_a_skip_needs_no_better_answer(rating):
    client, url = rating
    response = client.post(url, {"skip": "1", "flag_reason": "cut off", "correction": ""})
    assert response.status_code == 302
    judgment = Judgment.objects.get()
    assert (judgment.choice, judgment.correction) == ("skip", "")
