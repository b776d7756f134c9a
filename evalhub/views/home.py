from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from evalhub.roles import is_manager, is_reviewer


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Managers land on their studies, reviewers on their review queue, experts on their
    rating queue."""
    if is_manager(request.user):
        return redirect("study_list")
    return redirect("review_home" if is_reviewer(request.user) else "rate_home")
