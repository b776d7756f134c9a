from django.urls import path

from evalhub.views import studies

urlpatterns = [
    path("", studies.study_list, name="study_list"),
    path("new/", studies.study_create_view, name="study_create"),
    path("<int:pk>/", studies.study_detail, name="study_detail"),
    path("<int:pk>/status/", studies.study_status, name="study_status"),
    path("<int:pk>/raters/", studies.study_raters, name="study_raters"),
]
