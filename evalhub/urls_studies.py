from django.urls import path

from evalhub.views import studies

urlpatterns = [
    path("", studies.study_list, name="study_list"),
]
