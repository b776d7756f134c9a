"""The rater's pages. Everything is addressed by the rater's own assignments: a token or a
study that is not theirs is a 404, so that its existence is never confirmed."""

import hashlib
import time

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect, push_url

from evalhub.forms.rating import CHOICE_BUTTONS, CHOICE_LABELS, JudgmentForm
from evalhub.models import Assignment, Study, StudyStatus
from evalhub.selectors.rating import (
    rater_assignment,
    rater_assignments,
    rater_next_assignment,
    rater_progress,
    rater_studies,
    rating_item,
)
from evalhub.services.allocation import allocation_for_rater, allocation_next
from evalhub.services.judgments import NOT_OPEN, JudgmentError, judgment_submit

ERROR_TOO_MANY_SUBMITS = "That is more submissions than anyone can read in a minute; wait a moment."
NOTICE_NOT_OPEN = {
    StudyStatus.DRAFT: "This study has not opened yet.",
    StudyStatus.PAUSED: "This study is paused; your judgments so far are saved.",
    StudyStatus.CLOSED: "This study is closed; thank you for your judgments.",
}
# A study that stopped itself has enough judgments; the notice says nothing of the outcome.
NOTICE_COMPLETE = "This study is complete: enough judgments are in. Thank you for yours."
# Per rater and per minute. The default cache is per process, so with several web workers the
# effective limit is this times the number of workers: still far above a human pace.
DEFAULT_SUBMITS_PER_MINUTE = 30


def _too_many_submits(user_pk: int) -> bool:
    limit = getattr(settings, "EVALHUB_RATING_SUBMITS_PER_MINUTE", DEFAULT_SUBMITS_PER_MINUTE)
    key = f"evalhub:rating-submits:{user_pk}:{int(time.time() // 60)}"
    cache.add(key, 0, timeout=120)
    return cache.incr(key) > limit


def _blind_study(study: Study) -> dict:
    """The only study fields a rater's template receives. The guidelines' version is a short
    hash of their text: rate.js opens them whenever it differs from the one it last showed."""
    return {
        "pk": study.pk,
        "name": study.name,
        "guidelines": study.guidelines,
        "guidelines_version": hashlib.sha256(study.guidelines.encode()).hexdigest()[:12],
        "status": study.status,
    }


def _go(request: HttpRequest, url: str) -> HttpResponse:
    """Leave the rating page: a client redirect for htmx, a plain redirect otherwise."""
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _own_study(request: HttpRequest, pk: int) -> Study:
    mine = Q(comparisons__assignments__rater=request.user) | Q(raters=request.user)
    study = Study.objects.filter(mine, pk=pk).distinct().first()
    if study is None:
        raise Http404
    return study


@login_required
def rate_home(request: HttpRequest) -> HttpResponse:
    """The studies in which this rater has work, with their own progress only."""
    allocation_for_rater(rater=request.user)
    return render(request, "evalhub/rate_home.html", {"studies": rater_studies(rater=request.user)})


@login_required
def rate_study(request: HttpRequest, pk: int) -> HttpResponse:
    """The rater's overview of one study: progress, what they judged (to revise), or done."""
    study = _own_study(request, pk)
    allocation_next(study=study, rater=request.user)
    queue = list(rater_assignments(study=study, rater=request.user))
    judged = [
        {
            "number": number,
            "token": a.token,
            "prompt": a.comparison.prompt.text,
            "choice": CHOICE_LABELS.get(a.judgment.choice, a.judgment.choice),
            "flagged": a.judgment.flagged,
        }
        for number, a in enumerate(queue, start=1)
        if hasattr(a, "judgment")
    ]
    context = {
        "study": _blind_study(study),
        "progress": rater_progress(study=study, rater=request.user),
        "judged": judged,
        "is_open": study.status == StudyStatus.OPEN,
        "notice": NOTICE_COMPLETE if study.complete else NOTICE_NOT_OPEN.get(study.status, ""),
    }
    return render(request, "evalhub/rate_study.html", context)


@login_required
def rate_next(request: HttpRequest, pk: int) -> HttpResponse:
    """Send the rater to their next unjudged item, or to the overview when none is left."""
    study = _own_study(request, pk)
    allocation_next(study=study, rater=request.user)
    following = rater_next_assignment(study=study, rater=request.user)
    if study.status != StudyStatus.OPEN or following is None:
        return redirect("rate_study", pk=study.pk)
    return redirect("rate_item", token=following.token)


def _render_item(
    request: HttpRequest, assignment: Assignment, form: JudgmentForm, status: int = 200
) -> HttpResponse:
    item = rating_item(assignment=assignment)
    context = {
        "item": item,
        "form": form,
        "choices": CHOICE_BUTTONS,
        "study": _blind_study(assignment.comparison.study),
        "progress": item.progress,
    }
    # htmx posts get the item fragment only; everything else (including history restores)
    # gets the whole page.
    partial = request.htmx and request.method == "POST"
    template = "evalhub/rate_item.html#item" if partial else "evalhub/rate_item.html"
    return render(request, template, context, status=status)


def _after_submit(request: HttpRequest, study: Study) -> HttpResponse:
    allocation_next(study=study, rater=request.user)
    following = rater_next_assignment(study=study, rater=request.user)
    if following is None:
        return _go(request, reverse("rate_study", args=[study.pk]))
    url = reverse("rate_item", args=[following.token])
    if not request.htmx:
        return redirect(url)
    fresh = JudgmentForm(criteria=study.criteria)
    return push_url(_render_item(request, following, fresh), url)


@login_required
@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def rate_item(request: HttpRequest, token: str) -> HttpResponse:
    """One comparison: GET shows it (prefilled when revising), POST records the judgment."""
    assignment = rater_assignment(token=token, rater=request.user)
    if assignment is None:
        raise Http404
    study = assignment.comparison.study
    if study.status != StudyStatus.OPEN:  # the overview says why
        return _go(request, reverse("rate_study", args=[study.pk]))

    if request.method == "GET":
        judgment = getattr(assignment, "judgment", None)
        initial = JudgmentForm.initial_for(judgment, study.criteria)
        return _render_item(
            request, assignment, JudgmentForm(criteria=study.criteria, initial=initial)
        )

    form = JudgmentForm(request.POST, criteria=study.criteria)
    if _too_many_submits(request.user.pk):
        form.add_error(None, ERROR_TOO_MANY_SUBMITS)
        return _render_item(request, assignment, form, status=429)
    if not form.is_valid():
        return _render_item(request, assignment, form, status=422)
    try:
        judgment_submit(
            assignment=assignment,
            rater=request.user,
            choice=form.cleaned_data["choice"],
            criterion_scores=form.criterion_scores(),
            comment=form.cleaned_data["comment"],
            correction=form.cleaned_data["correction"],
            flagged=form.cleaned_data["flagged"],
            flag_reason=form.cleaned_data["flag_reason"],
            time_on_task_ms=form.cleaned_data["time_on_task_ms"],
        )
    except JudgmentError as exc:
        if exc.code == NOT_OPEN:  # paused or closed between page load and submit
            return _go(request, reverse("rate_study", args=[study.pk]))
        form.add_error(None, str(exc))
        return _render_item(request, assignment, form, status=422)
    return _after_submit(request, study)
