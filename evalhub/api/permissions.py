"""Who may call what. Managers (staff) see everything; everyone else reaches only their own
assignments, through querysets scoped to ``request.user`` (so a stranger's object is a 404, never
a 403 that would confirm it exists)."""

from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle
from rest_framework.views import APIView

from evalhub.roles import is_manager

# Token first only so that an anonymous caller gets 401 with ``WWW-Authenticate: Token`` instead
# of a bare 403; a browser session still authenticates exactly as before.
AUTHENTICATION_CLASSES = [TokenAuthentication, SessionAuthentication]


class IsManager(BasePermission):
    """Staff only. Checked before any object lookup, so an expert gets the same 403 for an object
    that exists and one that does not."""

    message = "Only managers may use this endpoint."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_manager(request.user)


MANAGER_PERMISSIONS = [IsAuthenticated, IsManager]


class JudgmentRateThrottle(UserRateThrottle):
    """Per-user limit on judgment writes, at settings REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]."""

    scope = "judgments"


class TokenRequestThrottle(AnonRateThrottle):
    """Slows password guessing through ``POST /api/token/`` (keyed by client address)."""

    scope = "token"
    rate = "20/min"
