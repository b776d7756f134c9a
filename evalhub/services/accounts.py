"""Creating rater and manager accounts without the admin."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import transaction

from evalhub.roles import expert_group


@transaction.atomic
def user_create(
    *, username: str, password: str | None = None, email: str = "", manager: bool = False
) -> tuple[AbstractUser, str]:
    """Create an expert (or a manager, who is also staff) and return it with its password.

    A password is generated when none is given. Raises ``ValueError`` if the username is taken.
    """
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise ValueError(f"user {username!r} already exists")
    password = password or secrets.token_urlsafe(12)
    user = User.objects.create_user(username=username, email=email, password=password)
    if manager:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    else:
        user.groups.add(expert_group())
    return user, password
