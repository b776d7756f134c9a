"""``POST /api/token/`` with username and password returns the caller's API token (created on
first use). ``manage.py drf_create_token USERNAME`` does the same from the shell."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken

from evalhub.api.permissions import TokenRequestThrottle


@extend_schema(
    summary="Exchange a username and password for an API token",
    responses=inline_serializer("TokenResponse", {"token": serializers.CharField()}),
)
class ObtainTokenView(ObtainAuthToken):
    throttle_classes = [TokenRequestThrottle]
