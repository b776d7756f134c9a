from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from evalhub.roles import is_manager


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Managers land on their studies, experts on their rating queue."""
    return redirect("study_list" if is_manager(request.user) else "rate_home")
