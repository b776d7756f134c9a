"""The People pages: managers list accounts and add experts, who set their own password
through a link shown once."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from evalhub.roles import is_expert, is_manager
from evalhub.selectors.rating import rater_next_assignment
from evalhub.services.accounts import USERNAME_TAKEN
from evalhub.services.judgments import judgment_submit
from tests.evalhub.rating_fixtures import open_study
from tests.factories import ExpertFactory, ManagerFactory

pytestmark = pytest.mark.django_db


def _link(response) -> str:
    return re.search(r'value="([^"]+)" class="set-password-link"', response.content.decode())[1]


def _add(client, username: str, role: str = "expert"):
    return client.post(reverse("person_create"), {"username": username, "role": role})


def test_adding_an_expert_shows_a_set_password_link_once_and_no_password(manager_client):
    response = _add(manager_client, "ada")
    assert response.status_code == 200
    user = get_user_model().objects.get(username="ada")
    assert is_expert(user) and not is_manager(user)
    assert not user.has_usable_password()
    assert "no-store" in response["Cache-Control"]
    assert _link(response).startswith("http://testserver/accounts/reset/")
    people = manager_client.get(reverse("people")).content.decode()
    assert "invited, no password yet" in people and "/accounts/reset/" not in people


def test_the_link_sets_the_password_once_and_the_expert_can_log_in(manager_client):
    link = _link(_add(manager_client, "ada"))
    invitee = Client()
    form_page = invitee.get(link, follow=True)
    assert "Set your password" in form_page.content.decode()
    set_url = form_page.redirect_chain[-1][0]
    new = {"new_password1": "a long quiet harbour", "new_password2": "a long quiet harbour"}
    done = invitee.post(set_url, new)
    assert done["Location"] == reverse("password_reset_complete")
    assert Client().login(username="ada", password="a long quiet harbour")
    again = Client().get(link, follow=True).content.decode()
    assert "This link no longer works" in again
    other = {"new_password1": "another quiet harbour", "new_password2": "another quiet harbour"}
    assert Client().post(set_url, other).status_code == 200  # the page says the link is spent
    assert Client().login(username="ada", password="a long quiet harbour")


def test_a_manager_account_is_staff_and_not_an_expert(manager_client):
    _add(manager_client, "lead", role="manager")
    user = get_user_model().objects.get(username="lead")
    assert is_manager(user) and not is_expert(user)


def test_a_taken_username_is_refused_by_field_and_creates_nothing(manager_client):
    ExpertFactory(username="ada")
    response = _add(manager_client, "ada")
    assert response.status_code == 422
    html = response.content.decode()
    assert (
        "<strong>Username</strong>: " + USERNAME_TAKEN.format(username="ada").replace("'", "&#x27;")
        in html
    )
    assert get_user_model().objects.filter(username="ada").count() == 1


def test_a_username_with_spaces_is_refused_naming_the_field(manager_client):
    response = _add(manager_client, "ada lovelace")
    assert response.status_code == 422
    assert "<strong>Username</strong>: Enter a valid username" in response.content.decode()
    assert not get_user_model().objects.filter(username="ada lovelace").exists()


def test_the_people_page_lists_each_experts_studies_and_counts(manager_client):
    study, (rater, _), _ = open_study(prompts=3, name="Support answers")
    judgment_submit(
        assignment=rater_next_assignment(study=study, rater=rater), rater=rater, choice="a"
    )
    html = manager_client.get(reverse("people")).content.decode()
    row = re.search(rf"<tr>\s*<td>{rater.username}</td>.*?</tr>", html, re.S).group(0)
    assert "expert" in row and "Support answers</a> (1 of 3)" in row
    assert "1 of 3" in row


def test_a_new_link_can_be_made_for_an_expert_but_not_for_a_manager(manager_client):
    expert = ExpertFactory()
    response = manager_client.post(reverse("person_link", args=[expert.pk]))
    assert _link(response).startswith("http://testserver/accounts/reset/")
    other = ManagerFactory()
    assert manager_client.post(reverse("person_link", args=[other.pk])).status_code == 404
    assert manager_client.get(reverse("person_link", args=[expert.pk])).status_code == 405


def test_the_navigation_links_people_for_managers_only(manager_client, expert):
    assert (
        f'href="{reverse("people")}"' in manager_client.get(reverse("study_list")).content.decode()
    )
    expert_client = Client()
    expert_client.force_login(expert)
    assert (
        f'href="{reverse("people")}"'
        not in expert_client.get(reverse("rate_home")).content.decode()
    )
