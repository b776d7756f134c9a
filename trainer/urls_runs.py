from django.urls import path

from trainer.views import runs

urlpatterns = [
    path("", runs.run_list, name="run_list"),
    path("<int:pk>/", runs.run_detail, name="run_detail"),
]
