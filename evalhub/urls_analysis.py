from django.urls import path

from evalhub.views import analysis

urlpatterns = [
    path("<int:pk>/analysis/", analysis.study_analysis, name="study_analysis"),
    path(
        "<int:pk>/analysis/items/<int:comparison_id>/",
        analysis.study_item,
        name="study_item",
    ),
    path("<int:pk>/report.<str:fmt>", analysis.study_report, name="study_report"),
]
