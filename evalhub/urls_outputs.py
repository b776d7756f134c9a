from django.urls import path

from evalhub.views.outputs import run_outputs
from evalhub.views.run_evaluation import run_evaluate

urlpatterns = [
    path("<int:run_id>/outputs/", run_outputs, name="run_outputs"),
    path("<int:run_id>/evaluate/", run_evaluate, name="run_evaluate"),
]
