"""A run's base and adapter systems, and imported ones: the only code that creates them.

A run's system is known by ``(run, kind)``; its name (``base:<model>:run-<id>``,
``adapter:run-<id>``) is a label for people. An imported system (outputs made elsewhere: a file,
a served model) belongs to no run and is known by its name.
"""

from pathlib import Path

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from evalhub.models import RUN_KINDS, Comparison, Output, System, SystemKind
from evalhub.selectors.outputs import OutputsError
from trainer.models import FineTuneRun

NO_ADAPTER = "run {run_id} has no adapter yet (adapter_path is empty); train it first"
ADAPTER_MISSING = "run {run_id}: adapter directory {path} does not exist"
BAD_SYSTEMS = "systems must be a non-empty subset of base, adapter; got {value!r}"
OUTPUT_IN_STUDY = (
    "{count} output(s) of system {name!r} are part of a study; they cannot be replaced"
)
SYSTEM_NAME_TAKEN = "system name {name!r} is already used by a system of another kind or run"
SYSTEM_NOT_IMPORTED = (
    "system {name!r} exists and is of kind {kind!r}; outputs made elsewhere can only go into a "
    "system of kind 'imported'"
)


def adapter_dir(run: FineTuneRun) -> Path:
    """The run's saved adapter, or an error saying why there is none."""
    if not run.adapter_path:
        raise OutputsError(NO_ADAPTER.format(run_id=run.pk))
    path = Path(run.adapter_path)
    if not path.is_dir():
        raise OutputsError(ADAPTER_MISSING.format(run_id=run.pk, path=path))
    return path


def system_name(run: FineTuneRun, kind: str) -> str:
    """The label a run's base or adapter system gets when it is created."""
    if kind == "base":
        return f"base:{run.base_model.name[:150]}:run-{run.pk}"
    return f"adapter:run-{run.pk}"


@transaction.atomic
def system_get_or_create(*, run: FineTuneRun, kind: str) -> System:
    """The run's base (kind "base") or adapter (kind "adapter") system.

    The base system belongs to the run, not only to the base model, so that its outputs are
    always generated with the same decoding settings as the adapter's they are compared with.
    """
    if kind not in RUN_KINDS:
        raise OutputsError(BAD_SYSTEMS.format(value=kind))
    system = System.objects.filter(run=run, kind=kind).first()
    if system is not None:
        return system
    name = system_name(run, kind)
    try:
        with transaction.atomic():
            return System.objects.create(
                name=name,
                kind=kind,
                run=run,
                base_model=run.base_model,
                description=f"{kind} of run {run.pk} ({run.name})",
            )
    except IntegrityError:
        # Another worker created the run's system meanwhile, or the name is someone else's.
        system = System.objects.filter(run=run, kind=kind).first()
        if system is None:
            raise OutputsError(SYSTEM_NAME_TAKEN.format(name=name)) from None
        return system


@transaction.atomic
def system_imported_get_or_create(*, name: str, description: str) -> System:
    """The imported system called ``name``; ``description`` says where a new one's outputs
    come from."""
    system, _ = System.objects.get_or_create(
        name=name, defaults={"kind": SystemKind.IMPORTED, "description": description}
    )
    if system.kind != SystemKind.IMPORTED:
        raise OutputsError(SYSTEM_NOT_IMPORTED.format(name=name, kind=system.kind))
    return system


def outputs_in_study_check(system: System, outputs: QuerySet[Output]) -> None:
    """Refuse to replace outputs that a study compares: its judgments are about their text."""
    ids = list(outputs.values_list("pk", flat=True))
    in_study = Comparison.objects.filter(Q(output_a__in=ids) | Q(output_b__in=ids)).count()
    if in_study:
        raise OutputsError(OUTPUT_IN_STUDY.format(count=in_study, name=system.name))
