from django.urls import path

from trainer.views import datasets

urlpatterns = [
    path("", datasets.dataset_list, name="dataset_list"),
]
