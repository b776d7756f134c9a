from django.contrib import admin
from django.urls import include, path

from evalhub.views.home import home

urlpatterns = [
    path("", home, name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("datasets/", include("trainer.urls_datasets")),
    path("runs/", include("trainer.urls_runs")),
    path("runs/", include("evalhub.urls_outputs")),
    path("studies/", include("evalhub.urls_studies")),
    path("studies/", include("evalhub.urls_analysis")),
    path("rate/", include("evalhub.urls_rating")),
    path("api/", include("evalhub.api.urls")),
]
