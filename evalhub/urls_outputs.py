from django.urls import path

from evalhub.views.outputs import run_outputs

urlpatterns = [
    path("<int:run_id>/outputs/", run_outputs, name="run_outputs"),
]
