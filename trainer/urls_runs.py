from django.urls import path

from trainer.views import run_launch, runs

urlpatterns = [
    path("", runs.run_list, name="run_list"),
    path("new/", run_launch.run_new, name="run_new"),
    path("<int:pk>/", runs.run_detail, name="run_detail"),
    path("<int:pk>/cancel/", run_launch.run_cancel, name="run_cancel"),
    path("<int:pk>/resume/", run_launch.run_resume, name="run_resume"),
]
