"""A system is known by its fields: a run's base and adapter are (run, kind), gold answers have
kinds of their own, and every lookup goes through those fields, never through a name."""

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from evalhub.forms.studies import StudyCreateForm
from evalhub.models import Study, System, SystemKind
from evalhub.selectors.outputs import OutputsError, run_systems
from evalhub.services.gold import GoldItem, gold_system
from evalhub.services.studies import ERROR_GOLD_SYSTEM_COMPARED, StudyError, study_create
from evalhub.services.systems import SYSTEM_NAME_TAKEN, system_get_or_create
from tests.factories import (
    ExpertFactory,
    FineTuneRunFactory,
    OutputFactory,
    PromptFactory,
    SystemFactory,
)

pytestmark = pytest.mark.django_db


def two_runs_on_one_base_model():
    first = FineTuneRunFactory()
    second = FineTuneRunFactory(base_model=first.base_model, dataset=first.dataset)
    return first, second


def test_second_run_gets_its_own_base_system():
    # The review's reproduction: the study form and create_study used to pick run 1's base.
    first, second = two_runs_on_one_base_model()
    system_get_or_create(run=first, kind="base")
    mine = system_get_or_create(run=second, kind="base")
    assert run_systems(run=second)["base"] == mine
    assert run_systems(run=first)["base"] != mine


def test_each_run_is_found_by_its_fields_even_when_its_name_was_changed():
    run = FineTuneRunFactory()
    base = system_get_or_create(run=run, kind="base")
    System.objects.filter(pk=base.pk).update(name="renamed by a person")
    assert system_get_or_create(run=run, kind="base") == base
    assert run_systems(run=run) == {"base": base, "adapter": None}


def test_a_run_cannot_have_two_base_systems():
    run = FineTuneRunFactory()
    system_get_or_create(run=run, kind="base")
    with pytest.raises(IntegrityError), transaction.atomic():
        System.objects.create(name="other", kind="base", run=run, base_model=run.base_model)


def test_a_name_taken_by_another_system_is_refused_clearly():
    run = FineTuneRunFactory()
    SystemFactory(name=f"adapter:run-{run.pk}", kind=SystemKind.IMPORTED)
    with pytest.raises(OutputsError) as error:
        system_get_or_create(run=run, kind="adapter")
    assert str(error.value) == SYSTEM_NAME_TAKEN.format(name=f"adapter:run-{run.pk}")
    assert run_systems(run=run)["adapter"] is None


def test_there_is_one_system_of_each_gold_kind():
    better = gold_system(SystemKind.GOLD_BETTER)
    assert gold_system(SystemKind.GOLD_BETTER) == better
    assert gold_system(SystemKind.GOLD_WORSE) != better
    with pytest.raises(IntegrityError), transaction.atomic():
        System.objects.create(name="another gold", kind=SystemKind.GOLD_BETTER)


def test_a_gold_system_renamed_is_still_kept_out_of_studies_and_the_form():
    gold = gold_system(SystemKind.GOLD_WORSE)
    System.objects.filter(pk=gold.pk).update(name="looks like any other system")
    gold.refresh_from_db()
    assert gold not in StudyCreateForm().fields["systems"].queryset
    other = SystemFactory()
    with pytest.raises(StudyError) as error:
        study_create(name="Study", systems=[gold, other])
    assert str(error.value) == ERROR_GOLD_SYSTEM_COMPARED.format(name=gold.name)


def _answered(system: System, prompts: list) -> None:
    for prompt in prompts:
        OutputFactory(system=system, prompt=prompt, text=f"{system.name} on {prompt.pk}")


def test_two_runs_on_one_base_model_each_study_compares_its_own_run(manager_client):
    first, second = two_runs_on_one_base_model()
    prompts = [PromptFactory(dataset=first.dataset) for _ in range(3)]
    for run in (first, second):
        for kind in ("base", "adapter"):
            _answered(system_get_or_create(run=run, kind=kind), prompts)

    for run in (first, second):
        form = manager_client.get(f"/studies/new/?run={run.pk}").context["form"]
        own = run_systems(run=run)
        assert form.initial["systems"] == [own["base"], own["adapter"]]
        study = study_create(name=f"Study of run {run.pk}", systems=list(own.values()), run=run)
        compared = {
            system_id
            for comparison in study.comparisons.all()
            for system_id in (comparison.output_a.system_id, comparison.output_b.system_id)
        }
        assert compared == {s.pk for s in own.values()}


def test_create_study_command_takes_the_runs_own_base_and_adapter():
    first, second = two_runs_on_one_base_model()
    prompts = [PromptFactory(dataset=first.dataset) for _ in range(2)]
    for run in (first, second):
        for kind in ("base", "adapter"):
            _answered(system_get_or_create(run=run, kind=kind), prompts)
    expert = ExpertFactory()
    call_command(
        "create_study",
        *("--name", "Second", "--run", str(second.pk), "--systems", "base,adapter"),
        *("--raters", expert.username, "--overlap", "1"),
    )
    study = Study.objects.get(name="Second")
    assert set(study.systems.all()) == set(run_systems(run=second).values())


def test_gold_items_land_in_the_gold_systems():
    systems = [SystemFactory(), SystemFactory()]
    prompt = PromptFactory()
    for system in systems:
        OutputFactory(system=system, prompt=prompt)
    study_create(
        name="With gold",
        systems=systems,
        gold=[GoldItem(prompt="q", better="right", worse="wrong")],
    )
    better = System.objects.get(kind=SystemKind.GOLD_BETTER)
    worse = System.objects.get(kind=SystemKind.GOLD_WORSE)
    assert [o.text for o in better.outputs.all()] == ["right"]
    assert [o.text for o in worse.outputs.all()] == ["wrong"]
