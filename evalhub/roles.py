"""The three roles. A manager is a staff user and sees everything; an expert is a member of the
"expert" group and sees only their own blinded assignments; a reviewer, a member of the
"reviewer" group, settles the comparisons where raters split or flagged one, still blinded, and
sees no manager page."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

EXPERT_GROUP = "expert"
REVIEWER_GROUP = "reviewer"


def is_manager(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def is_expert(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(
        user.is_authenticated and user.is_active and user.groups.filter(name=EXPERT_GROUP).exists()
    )


def is_reviewer(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(
        user.is_authenticated
        and user.is_active
        and user.groups.filter(name=REVIEWER_GROUP).exists()
    )


def expert_group() -> Group:
    group, _ = Group.objects.get_or_create(name=EXPERT_GROUP)
    return group


def reviewer_group() -> Group:
    group, _ = Group.objects.get_or_create(name=REVIEWER_GROUP)
    return group


def manager_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Login first (redirect), then 403 for anyone who is not a manager."""

    @wraps(view)
    @login_required
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not is_manager(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def reviewer_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Login first (redirect), then 403 for anyone who is neither a reviewer nor a manager."""

    @wraps(view)
    @login_required
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not (is_reviewer(request.user) or is_manager(request.user)):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped
