"""What every page carries: the icon, the Admin link only for those the admin serves, and
error pages with the navigation (DEBUG off, as in production)."""

import pytest
from django.contrib.auth.models import Permission
from django.contrib.staticfiles import finders
from django.templatetags.static import static

from tests.factories import ManagerFactory, UserFactory

pytestmark = pytest.mark.django_db
ADMIN_LINK = 'href="/admin/"'


def test_every_page_links_an_icon_that_is_in_static(client, manager):
    client.force_login(manager)
    html = client.get("/runs/").content.decode()
    assert f'<link rel="icon" href="{static("favicon.svg")}"' in html
    assert finders.find("favicon.svg")


def test_managers_find_the_api_docs_in_the_navigation_and_experts_do_not(client, manager, expert):
    client.force_login(manager)
    assert 'href="/api/docs/">API</a>' in client.get("/runs/").content.decode()
    assert client.get("/api/docs/").status_code == 200
    client.force_login(expert)
    assert "/api/docs/" not in client.get("/rate/").content.decode()


def test_a_manager_without_model_permissions_gets_no_admin_link(client, manager):
    client.force_login(manager)
    assert ADMIN_LINK not in client.get("/runs/").content.decode()


def test_superusers_and_staff_with_model_permissions_get_the_admin_link(client):
    staff = ManagerFactory()
    staff.user_permissions.add(Permission.objects.get(codename="view_system"))
    for user in (UserFactory(is_staff=True, is_superuser=True), staff):
        client.force_login(user)
        html = client.get("/runs/").content.decode()
        assert ADMIN_LINK in html
        assert client.get("/admin/").status_code == 200


def test_the_404_page_has_the_navigation(client, manager, settings):
    settings.DEBUG = False
    client.force_login(manager)
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Not found" in html and 'href="/runs/"' in html and 'class="topbar"' in html


def test_the_403_page_has_the_experts_navigation(client, expert, settings):
    settings.DEBUG = False
    client.force_login(expert)
    response = client.get("/runs/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "Not allowed" in html and 'href="/rate/"' in html and 'href="/runs/"' not in html
