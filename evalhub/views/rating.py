from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from evalhub.models import Study, StudyStatus


@login_required
def rate_home(request: HttpRequest) -> HttpResponse:
    """The studies in which this rater has work, with their own progress only."""
    mine = Q(comparisons__assignments__rater=request.user)
    studies = (
        Study.objects.filter(mine, status=StudyStatus.OPEN)
        .annotate(
            assigned=Count("comparisons__assignments", filter=mine, distinct=True),
            done=Count(
                "comparisons__assignments",
                filter=mine & Q(comparisons__assignments__judgment__isnull=False),
                distinct=True,
            ),
        )
        .order_by("name")
    )
    return render(request, "evalhub/rate_home.html", {"studies": studies})
