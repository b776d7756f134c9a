"""The admin, which lives in the web layer, covers the models of both apps."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from tests.factories import FineTuneRunFactory, ManagerFactory

pytestmark = pytest.mark.django_db

MODELS = [
    ("trainer", "dataset"),
    ("trainer", "example"),
    ("trainer", "basemodel"),
    ("trainer", "finetunerun"),
    ("evalhub", "system"),
    ("evalhub", "prompt"),
    ("evalhub", "output"),
    ("evalhub", "study"),
    ("evalhub", "comparison"),
    ("evalhub", "assignment"),
    ("evalhub", "judgment"),
    ("evalhub", "adjudication"),
    ("evalhub", "judge"),
    ("evalhub", "judgerun"),
    ("evalhub", "judgeverdict"),
]


def test_every_model_of_both_apps_but_loss_points_is_registered():
    registered = {(m._meta.app_label, m._meta.model_name) for m in admin.site._registry}
    models = {
        (m._meta.app_label, m._meta.model_name)
        for app in ("trainer", "evalhub")
        for m in apps.get_app_config(app).get_models()
    }
    # Loss-curve points are shown inline on their run.
    assert models - registered == {("trainer", "runmetric")}
    assert registered >= set(MODELS)


@pytest.mark.parametrize(("app", "model"), MODELS)
def test_a_superuser_sees_each_changelist(client, app, model):
    client.force_login(ManagerFactory(is_superuser=True))
    assert client.get(reverse(f"admin:{app}_{model}_changelist")).status_code == 200


def test_a_run_page_in_the_admin_shows_its_loss_points(client):
    run = FineTuneRunFactory()
    run.metrics.create(kind="train", step=1, loss=2.5)
    client.force_login(ManagerFactory(is_superuser=True))
    page = client.get(reverse("admin:trainer_finetunerun_change", args=[run.pk]))
    assert page.status_code == 200 and "2.5" in page.content.decode()
