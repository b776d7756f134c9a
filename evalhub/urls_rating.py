from django.urls import path

from evalhub.views import rating

urlpatterns = [
    path("", rating.rate_home, name="rate_home"),
    path("study/<int:pk>/", rating.rate_study, name="rate_study"),
    path("study/<int:pk>/next/", rating.rate_next, name="rate_next"),
    path("<str:token>/", rating.rate_item, name="rate_item"),
]
