"""Manager pages for studies: list, plan, create, detail (status, raters, quality per rater,
the always-valid verdict)."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from evalhub.analysis.planning import PlanError, StudyPlan
from evalhub.forms.preferences import PreferenceSetBuildForm
from evalhub.forms.studies import AddRatersForm, StudyCreateForm, StudyPlanForm
from evalhub.models import Study, StudyStatus
from evalhub.roles import manager_required
from evalhub.selectors import studies as study_selectors
from evalhub.selectors.judges import study_signal_choices
from evalhub.selectors.judging import study_judge_block
from evalhub.selectors.lineage import lineage_systems, study_leakage
from evalhub.selectors.rater_quality import rater_quality_block
from evalhub.selectors.recognisability import recognisability_block
from evalhub.selectors.review import review_counts
from evalhub.selectors.studies import (
    ppi_block,
    sequential_block,
    study_counts,
    study_flagged,
    study_gated_raters,
    study_plan,
    study_rater_stats,
)
from evalhub.selectors.verdict_details import verdict_details_block
from evalhub.services.gold import GoldError, GoldItem, gold_read
from evalhub.services.studies import (
    TRANSITIONS,
    StudyError,
    study_add_raters,
    study_create,
    study_set_signal,
    study_set_status,
)
from trainer.models import FineTuneRun

ERROR_GOLD_NOT_TEXT = "The gold file {name} is not UTF-8 text."
STATUS_ACTIONS = {
    StudyStatus.OPEN: "Open for rating",
    StudyStatus.PAUSED: "Pause",
    StudyStatus.CLOSED: "Close",
}


@manager_required
def study_list(request: HttpRequest) -> HttpResponse:
    return render(request, "evalhub/study_list.html", {"studies": study_selectors.study_list()})


def _initial_for_run(request: HttpRequest) -> dict:
    """``?run=<id>`` preselects that run with the base model and the adapter of every run of
    its chain (base, v1, v2 for a run that improves v1)."""
    run = FineTuneRun.objects.filter(pk=request.GET.get("run") or None).first()
    if run is None:
        return {}
    return {"run": run, "systems": lineage_systems(run=run)}


def _uploaded_gold(upload, show_reference: bool) -> list[GoldItem]:
    """The uploaded gold file parsed; none when no file was given."""
    if upload is None:
        return []
    try:
        lines = upload.read().decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise GoldError(ERROR_GOLD_NOT_TEXT.format(name=upload.name)) from exc
    return gold_read(lines, source=upload.name, require_reference=show_reference)


def _plan(form: StudyPlanForm) -> StudyPlan | None:
    """The plan for a bound planner form, or None with the refusal on the field it names."""
    if not form.is_valid():
        return None
    try:
        return study_plan(**form.cleaned_data)
    except PlanError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        return None


@manager_required
@require_GET
@vary_on_headers("HX-Request")
def study_plan_view(request: HttpRequest) -> HttpResponse:
    """The New study page's planner: htmx gets the ``plan`` fragment, a plain GET (no
    JavaScript) the whole New study page with the plan filled in. Bad input is a 422."""
    plan_form = StudyPlanForm(request.GET, prefix="plan")
    plan = _plan(plan_form)
    context = {"plan_form": plan_form, "plan": plan}
    status = 200 if plan is not None else 422
    if request.htmx:
        return render(request, "evalhub/study_create.html#plan", context, status=status)
    context["form"] = StudyCreateForm(initial=_initial_for_run(request))
    return render(request, "evalhub/study_create.html", context, status=status)


@manager_required
def study_create_view(request: HttpRequest) -> HttpResponse:
    plan_form = StudyPlanForm(prefix="plan")
    if request.method != "POST":
        form = StudyCreateForm(initial=_initial_for_run(request))
        context = {"form": form, "plan_form": plan_form}
        return render(request, "evalhub/study_create.html", context)

    form = StudyCreateForm(request.POST, request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        try:
            gold = _uploaded_gold(data["gold"], data["show_reference"])
            study = study_create(
                name=data["name"],
                systems=list(data["systems"]),
                prompts=data["prompts"],
                raters=list(data["raters"]),
                overlap=data["overlap"],
                criteria=data["criteria"],
                guidelines=data["guidelines"],
                show_reference=data["show_reference"],
                gold=gold,
                run=data["run"],
                stop_when_decided=data["stop_when_decided"],
                equivalence_margin=data["equivalence_margin"],
                raters_at_large=data["raters_at_large"],
                allocation=data["allocation"],
                min_gold_accuracy=data["min_gold_accuracy"],
                min_median_seconds=data["min_median_seconds"],
                split=data["split"],
                created_by=request.user,
            )
        except GoldError as exc:
            form.add_error("gold", str(exc))
        except StudyError as exc:
            form.add_error(None, str(exc))
        else:
            if data["open_now"]:
                _set_status(request, study, StudyStatus.OPEN)
            return redirect("study_detail", pk=study.pk)
    context = {"form": form, "plan_form": plan_form}
    return render(request, "evalhub/study_create.html", context, status=422)


@manager_required
def study_detail(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study.objects.select_related("run", "created_by"), pk=pk)
    return _render_detail(request, study, AddRatersForm(study=study))


def _render_detail(
    request: HttpRequest, study: Study, raters_form: AddRatersForm, status: int = 200
) -> HttpResponse:
    rater_stats = study_rater_stats(study=study)
    gated = study_gated_raters(study=study, rater_stats=rater_stats)
    context = {
        "study": study,
        "systems": study.systems.order_by("name"),
        "counts": study_counts(study=study),
        "rater_stats": rater_stats,
        "rater_quality": rater_quality_block(study=study, rater_stats=rater_stats),
        "flagged": study_flagged(study=study),
        "sequential": sequential_block(study=study, excluded=gated),
        "ppi": ppi_block(study=study, excluded=gated),
        "signal_choices": study_signal_choices(study=study),
        "details": verdict_details_block(study=study, rater_stats=rater_stats),
        "recognisability": recognisability_block(study=study),
        "review": review_counts(study=study, reviewer=request.user),
        "leakage": study_leakage(study=study),
        "judges": study_judge_block(study=study),
        "actions": [
            (target, STATUS_ACTIONS[target])
            for target in (StudyStatus.OPEN, StudyStatus.PAUSED, StudyStatus.CLOSED)
            if target in TRANSITIONS[study.status]
        ],
        "raters_form": raters_form,
        "preference_sets": study.preference_sets.order_by("name", "-version"),
        "preference_form": PreferenceSetBuildForm(),
    }
    return render(request, "evalhub/study_detail.html", context, status=status)


def _set_status(request: HttpRequest, study: Study, status: str) -> bool:
    try:
        study_set_status(study=study, status=status)
    except StudyError as exc:
        messages.error(request, str(exc))
        return False
    messages.success(request, f"The study is now {status}.")
    return True


@manager_required
@require_POST
def study_status(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=pk)
    _set_status(request, study, request.POST.get("status", ""))
    return redirect("study_detail", pk=study.pk)


@manager_required
@require_POST
def study_signal_view(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=pk)
    try:
        study_set_signal(study=study, signal=request.POST.get("signal", ""))
    except StudyError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "The prediction-powered interval now uses the chosen signal.")
    return redirect("study_detail", pk=study.pk)


@manager_required
@require_POST
def study_raters(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=pk)
    form = AddRatersForm(request.POST, study=study)
    if form.is_valid():
        try:
            created = study_add_raters(
                study=study,
                raters=list(form.cleaned_data["raters"]),
                overlap=form.cleaned_data["overlap"],
            )
        except GoldError as exc:
            form.add_error("gold", str(exc))
        except StudyError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"{len(created)} new assignments.")
            return redirect("study_detail", pk=study.pk)
    return _render_detail(request, study, form, status=422)
