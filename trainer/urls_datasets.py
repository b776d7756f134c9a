from django.urls import path

from trainer.views import datasets

urlpatterns = [
    path("", datasets.dataset_list, name="dataset_list"),
    path("upload/", datasets.dataset_upload, name="dataset_upload"),
    path("<slug:name>/", datasets.dataset_detail, name="dataset_detail"),
]
