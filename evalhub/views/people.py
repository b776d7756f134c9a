"""Manager pages for accounts: who is there, and adding an expert, a reviewer or a manager."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from evalhub.forms.people import ROLE_MANAGER, ROLE_REVIEWER, PersonCreateForm
from evalhub.roles import manager_required
from evalhub.selectors.people import people_list
from evalhub.services.accounts import password_set_path, user_invite


@manager_required
def people(request: HttpRequest) -> HttpResponse:
    return render(request, "evalhub/people.html", {"people": people_list()})


@manager_required
@never_cache
def person_create(request: HttpRequest) -> HttpResponse:
    """A valid POST answers the one page that shows the new account's set-password link: it is
    not stored, so it is shown once (and never cached). Bad input is a 422 naming the field."""
    if request.method != "POST":
        return render(request, "evalhub/people_create.html", {"form": PersonCreateForm()})
    form = PersonCreateForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            user = user_invite(
                username=data["username"],
                email=data["email"],
                manager=data["role"] == ROLE_MANAGER,
                reviewer=data["role"] == ROLE_REVIEWER,
            )
        except ValueError as exc:
            form.add_error("username", str(exc))
        else:
            return _show_link(request, user)
    return render(request, "evalhub/people_create.html", {"form": form}, status=422)


@manager_required
@require_POST
@never_cache
def person_link(request: HttpRequest, pk: int) -> HttpResponse:
    """A new set-password link for an expert who lost theirs or forgot their password. Not for
    managers: one manager must not take over another's account."""
    user = get_object_or_404(get_user_model(), pk=pk, is_staff=False, is_superuser=False)
    return _show_link(request, user)


def _show_link(request: HttpRequest, user: AbstractBaseUser) -> HttpResponse:
    context = {
        "person": user,
        "link": request.build_absolute_uri(password_set_path(user)),
        "timeout_days": settings.PASSWORD_RESET_TIMEOUT // 86400,
    }
    return render(request, "evalhub/people_created.html", context)
