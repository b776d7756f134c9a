from django.urls import path

from evalhub.views import rating

urlpatterns = [
    path("", rating.rate_home, name="rate_home"),
]
