"""``POST /api/token/`` with a JSON username and password returns the caller's API token
(created on first use). ``manage.py drf_create_token USERNAME`` does the same from the shell."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken

from evalhub.api.parsers import JSONParser
from evalhub.api.permissions import TokenRequestThrottle


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as the header `Authorization: Token <token>`")


@extend_schema(
    summary="Exchange a username and password for an API token",
    # DRF's serializer carries the read-only token too; the input is only what the caller sends.
    request=AuthTokenSerializer,
    responses={200: TokenSerializer},
)
class ObtainTokenView(ObtainAuthToken):
    # ObtainAuthToken accepts form and multipart bodies as well; like the rest of the API, JSON.
    parser_classes = [JSONParser]
    # The credentials in the body are the authentication: no session and no token, which the
    # schema says too, so a generated client calls it without one. Without a session there is
    # no CSRF check, and none is needed: a cross-site form cannot send application/json.
    authentication_classes = []
    throttle_classes = [TokenRequestThrottle]
