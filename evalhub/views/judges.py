"""The Judges page (managers): every model judge defined, and the New judge form, checked by
``judge_create`` exactly as ``manage.py judge_add`` is."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from evalhub.forms.judges import JudgeForm
from evalhub.roles import manager_required
from evalhub.selectors.judging import judge_list
from evalhub.services.judging import JudgeError, judge_create

DEFINED = "Judge {name} defined ({backend}, {model}); run it from a study's page."


@manager_required
def judges(request: HttpRequest) -> HttpResponse:
    """GET: the judges and an empty form. POST: a judge defined, or the form again with the
    refusal under the field it names (422), nothing stored."""
    if request.method != "POST":
        return _page(request, JudgeForm())
    form = JudgeForm(request.POST)
    if form.is_valid():
        try:
            judge = judge_create(**form.cleaned_data, created_by=request.user)
        except JudgeError as error:
            form.add_error(error.field or None, str(error))
        else:
            messages.success(
                request, DEFINED.format(name=judge.name, backend=judge.backend, model=judge.model)
            )
            return redirect("judges")
    return _page(request, form, status=422)


def _page(request: HttpRequest, form: JudgeForm, status: int = 200) -> HttpResponse:
    context = {"judges": judge_list(), "form": form}
    return render(request, "evalhub/judges.html", context, status=status)
