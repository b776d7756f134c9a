"""The reviewer's pages: the studies with comparisons to settle, a study's queue, and one
comparison, blinded as on the rating page, with every rater's judgment in the reviewer's frame
and the final call. Reviewers and managers only; a token that is not in this reviewer's queue
is a 404."""

import dataclasses

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from evalhub.forms.rating import CHOICE_BUTTONS, CHOICE_LABELS
from evalhub.forms.review import FinalCallForm
from evalhub.models import Comparison, Study, StudyStatus
from evalhub.roles import reviewer_required
from evalhub.selectors.review import (
    ReviewItem,
    disputed_comparisons,
    review_find,
    review_item,
    review_next,
    review_queue,
)
from evalhub.selectors.review import review_studies as studies_to_review
from evalhub.services.adjudication import AdjudicationError, adjudication_submit


def _study(pk: int) -> Study:
    return get_object_or_404(Study.objects.exclude(status=StudyStatus.DRAFT), pk=pk)


@reviewer_required
def review_home(request: HttpRequest) -> HttpResponse:
    return render(
        request, "evalhub/review_home.html", {"studies": studies_to_review(reviewer=request.user)}
    )


@reviewer_required
def review_study(request: HttpRequest, pk: int) -> HttpResponse:
    study = _study(pk)
    context = {
        "study": {"pk": study.pk, "name": study.name},
        "queue": review_queue(study=study, reviewer=request.user),
    }
    return render(request, "evalhub/review_study.html", context)


@reviewer_required
def review_next_item(request: HttpRequest, pk: int) -> HttpResponse:
    """The first comparison of the queue without a final call, or the queue when none is left."""
    study = _study(pk)
    following = review_next(study=study, reviewer=request.user)
    if following is None:
        return redirect("review_study", pk=study.pk)
    return redirect("review_item", pk=study.pk, token=following.token)


@reviewer_required
@require_http_methods(["GET", "POST"])
def review_comparison(request: HttpRequest, pk: int, token: str) -> HttpResponse:
    """GET shows the comparison (with the standing final call), POST records the final call
    and goes on to the next comparison without one."""
    study = _study(pk)
    queue = disputed_comparisons(study=study, reviewer=request.user)
    disputed = review_find(queue=queue, token=token)
    if disputed is None:
        raise Http404
    item = review_item(study=study, queue=queue, disputed=disputed)
    if request.method == "GET":
        form = FinalCallForm(initial={"choice": item.choice, "note": item.note})
        return _render(request, study, item, form)
    form = FinalCallForm(request.POST)
    if not form.is_valid():
        return _render(request, study, item, form, status=422)
    try:
        adjudication_submit(
            comparison=get_object_or_404(Comparison, pk=disputed.comparison),
            reviewer=request.user,
            choice=form.cleaned_data["choice"],
            left_is_a=disputed.left_is_a,
            note=form.cleaned_data["note"],
        )
    except AdjudicationError as exc:
        form.add_error(None, str(exc))
        return _render(request, study, item, form, status=422)
    return redirect("review_next", pk=study.pk)


def _render(
    request: HttpRequest, study: Study, item: ReviewItem, form: FinalCallForm, status: int = 200
) -> HttpResponse:
    judgments = [dataclasses.replace(j, choice=CHOICE_LABELS[j.choice]) for j in item.judgments]
    context = {
        "study": {"pk": study.pk, "name": study.name},
        "item": item,
        "judgments": judgments,
        "form": form,
        "choices": CHOICE_BUTTONS,
    }
    return render(request, "evalhub/review_item.html", context, status=status)
