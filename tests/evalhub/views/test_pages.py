import pytest

LIST_PAGES = ["/datasets/", "/runs/", "/studies/"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", LIST_PAGES)
def test_manager_pages_redirect_anonymous_users_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("url", LIST_PAGES)
def test_manager_pages_refuse_experts(expert_client, url):
    assert expert_client.get(url).status_code == 403


@pytest.mark.parametrize("url", LIST_PAGES)
def test_manager_pages_render_for_managers(manager_client, url):
    assert manager_client.get(url).status_code == 200


def test_home_sends_experts_to_their_queue_and_managers_to_studies(expert_client, manager):
    assert expert_client.get("/")["Location"] == "/rate/"
    expert_client.force_login(manager)
    assert expert_client.get("/")["Location"] == "/studies/"
