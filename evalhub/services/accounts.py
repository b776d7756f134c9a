"""Creating rater, reviewer and manager accounts without the admin."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.tokens import default_token_generator
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from evalhub.roles import expert_group, reviewer_group

USERNAME_TAKEN = "user {username!r} already exists"
TWO_ROLES = "an account is a manager or a reviewer, not both"


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str | None = None,
    email: str = "",
    manager: bool = False,
    reviewer: bool = False,
) -> tuple[AbstractUser, str]:
    """Create an expert (or a manager, who is also staff, or a reviewer) and return it with its
    password. A password is generated when none is given. Raises ``ValueError`` if the username
    is taken."""
    password = password or secrets.token_urlsafe(12)
    user = _create(
        username=username, email=email, manager=manager, reviewer=reviewer, password=password
    )
    return user, password


@transaction.atomic
def user_invite(
    *, username: str, email: str = "", manager: bool = False, reviewer: bool = False
) -> AbstractUser:
    """Create an expert (or a manager, or a reviewer) without a password: they choose one
    through the link of ``password_set_path``. Raises ``ValueError`` if the username is taken."""
    return _create(
        username=username, email=email, manager=manager, reviewer=reviewer, password=None
    )


def _create(
    *, username: str, email: str, manager: bool, reviewer: bool, password: str | None
) -> AbstractUser:
    User = get_user_model()
    if manager and reviewer:
        raise ValueError(TWO_ROLES)
    if User.objects.filter(username=username).exists():
        raise ValueError(USERNAME_TAKEN.format(username=username))
    # No password given: an unusable one, so nobody can log in before the link is used.
    user = User.objects.create_user(username=username, email=email, password=password)
    if manager:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    elif reviewer:
        user.groups.add(reviewer_group())
    else:
        user.groups.add(expert_group())
    return user


def password_set_path(user: AbstractUser) -> str:
    """The path of the page where ``user`` sets a password. The token is stateless (Django's
    password-reset token): it stops working once the password changes, so the link works once,
    and after ``PASSWORD_RESET_TIMEOUT`` in any case."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token})
