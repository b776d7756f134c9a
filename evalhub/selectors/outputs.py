"""Reads for the automated evaluation of a run: lookups, its prompts and systems, its outputs,
and the per-system summaries the outputs page, the commands and the demo show."""

from dataclasses import dataclass

from django.db.models import Q, QuerySet

from evalhub.metrics import EMPTY_FLAG, METRICS
from evalhub.metrics.summary import metric_intervals, paired_difference
from evalhub.models import RUN_KINDS, Output, Prompt, System, SystemKind
from trainer.models import Dataset, FineTuneRun, Split
from trainer.selectors.runs import evaluation_dataset

RUN_NOT_FOUND = "run {run_id} does not exist"
# What in a served system's ``decoding`` names the model it asked (``services.served_outputs``):
# a base and its adapter served side by side differ there, not in their settings.
SERVED_MODEL_KEYS = ("model", "served")
DATASET_NOT_FOUND = "dataset {name!r} does not exist"


class OutputsError(ValueError):
    """Bad input for generating, scoring or importing outputs; the message says what."""


def run_get(*, run_id: int) -> FineTuneRun:
    run = FineTuneRun.objects.select_related("base_model", "dataset").filter(pk=run_id).first()
    if run is None:
        raise OutputsError(RUN_NOT_FOUND.format(run_id=run_id))
    return run


def dataset_get(*, name: str) -> Dataset:
    dataset = Dataset.objects.filter(name=name).first()
    if dataset is None:
        raise OutputsError(DATASET_NOT_FOUND.format(name=name))
    return dataset


def evaluation_prompts(*, dataset: Dataset, split: str = Split.TEST) -> QuerySet[Prompt]:
    return Prompt.objects.filter(dataset=dataset, example__split=split).order_by("pk")


def run_systems(*, run: FineTuneRun) -> dict[str, System | None]:
    """{"base": System | None, "adapter": System | None}: the run's own pair, found by its
    fields (``run``, ``kind``), never by name; nothing is created."""
    found = {s.kind: s for s in System.objects.filter(run=run, kind__in=RUN_KINDS)}
    return {kind: found.get(kind) for kind in RUN_KINDS}


def scoring_systems(*, run: FineTuneRun) -> QuerySet[System]:
    """The run's own systems and the imported or reference ones that may answer its prompts."""
    return System.objects.filter(
        Q(run=run) | Q(run__isnull=True, kind__in=[SystemKind.IMPORTED, SystemKind.REFERENCE])
    )


def run_outputs(*, run: FineTuneRun, split: str = Split.TEST) -> QuerySet[Output]:
    """Outputs of the run's systems (and imported ones) on the run's evaluation prompts."""
    return Output.objects.filter(
        prompt__in=evaluation_prompts(dataset=evaluation_dataset(run=run), split=split),
        system__in=scoring_systems(run=run),
    ).select_related("prompt", "system")


# --- summaries -----------------------------------------------------------------------------

BAD_SORT = "sort must be 'prompt', a metric ({metrics}) or a metric with a leading '-'"


def _system_summary(system: System, role: str | None, outputs: list[Output], **boot) -> dict:
    scored = [o for o in outputs if o.metrics]
    return {
        "name": system.name,
        "kind": system.kind,
        "role": role,
        "decoding": system.decoding,
        "n_outputs": len(outputs),
        "n_scored": len(scored),
        "n_skipped": sum(not o.prompt.reference.strip() for o in outputs),
        "n_unscored": sum(bool(o.prompt.reference.strip()) and not o.metrics for o in outputs),
        "n_empty": sum(EMPTY_FLAG in o.flags for o in outputs),
        "encoders": sorted({o.metrics_encoder for o in scored if o.metrics_encoder}),
        "metrics": metric_intervals([o.metrics for o in scored], **boot),
    }


def outputs_summary(
    *, run: FineTuneRun, split: str = Split.TEST, n_resamples: int = 2000, seed: int = 0
) -> dict:
    """Per system: mean metrics with bootstrap 95% intervals, counts of scored, skipped (no
    reference) and empty outputs; and the paired difference adapter − base over prompts."""
    boot = {"n_resamples": n_resamples, "seed": seed}
    prompts = evaluation_prompts(dataset=evaluation_dataset(run=run), split=split)
    by_system: dict[int, list[Output]] = {}
    systems: dict[int, System] = {}
    for output in run_outputs(run=run, split=split).order_by("system__name", "prompt_id"):
        by_system.setdefault(output.system_id, []).append(output)
        systems[output.system_id] = output.system
    roles = {s.pk: kind for kind, s in run_systems(run=run).items() if s is not None}
    rank = {"base": 0, "adapter": 1}  # base first, then the adapter, then the rest by name
    order = sorted(systems, key=lambda pk: (rank.get(roles.get(pk), 2), systems[pk].name))
    summary = [_system_summary(systems[pk], roles.get(pk), by_system[pk], **boot) for pk in order]

    difference = None
    ids = {role: pk for pk, role in roles.items() if pk in by_system}
    if "base" in ids and "adapter" in ids:
        per_prompt = {
            role: {o.prompt_id: o.metrics for o in by_system[pk] if o.metrics}
            for role, pk in ids.items()
        }
        shared = per_prompt["adapter"].keys() & per_prompt["base"].keys()
        difference = {
            "treatment": systems[ids["adapter"]].name,
            "control": systems[ids["base"]].name,
            "n_pairs": len(shared),
            "metrics": paired_difference(per_prompt["adapter"], per_prompt["base"], **boot),
        }
    encoders = sorted({e for s in summary for e in s["encoders"]})
    warnings = []
    if len(encoders) > 1:
        warnings.append("BERTScore values come from different encoders and are not comparable")
    if difference and _settings(systems[ids["base"]]) != _settings(systems[ids["adapter"]]):
        warnings.append("base and adapter outputs were generated with different settings")
    if any(s["n_unscored"] for s in summary):
        warnings.append("some outputs are not scored yet: run `manage.py score`")
    return {
        "run": run.pk,
        "dataset": evaluation_dataset(run=run).name,
        "split": split,
        "prompts": prompts.count(),
        "prompts_without_reference": prompts.filter(reference__regex=r"^\s*$").count(),
        "encoder": encoders[0] if len(encoders) == 1 else None,
        "encoders": encoders,
        "systems": summary,
        "difference": difference,
        "warnings": warnings,
    }


def _settings(system: System) -> dict:
    return {k: v for k, v in system.decoding.items() if k not in SERVED_MODEL_KEYS}


@dataclass
class PromptRow:
    prompt: Prompt
    base: Output | None
    adapter: Output | None
    difference: dict[str, float]  # adapter − base, for metrics both outputs have


def sort_keys() -> list[str]:
    return ["prompt", *METRICS, *(f"-{m}" for m in METRICS)]


def output_rows(
    *, run: FineTuneRun, split: str = Split.TEST, sort: str = "prompt"
) -> list[PromptRow]:
    """Every evaluation prompt with the base and adapter outputs side by side.

    ``sort``: "prompt" (dataset order), a metric (biggest adapter gains first) or "-" and a
    metric (biggest losses first); prompts without that difference come last either way.
    """
    if sort not in sort_keys():
        raise OutputsError(BAD_SORT.format(metrics=", ".join(METRICS)))
    systems = run_systems(run=run)
    prompts = evaluation_prompts(dataset=evaluation_dataset(run=run), split=split)
    outputs: dict[tuple[int, int], Output] = {
        (o.system_id, o.prompt_id): o
        for o in Output.objects.filter(
            system__in=[s for s in systems.values() if s is not None],
            prompt__in=prompts,
        )
    }
    rows = []
    for prompt in prompts:
        base, adapter = (
            outputs.get((systems[k].pk, prompt.pk)) if systems[k] else None
            for k in ("base", "adapter")
        )
        difference = {}
        if base is not None and adapter is not None:
            difference = {
                m: adapter.metrics[m] - base.metrics[m]
                for m in METRICS
                if m in adapter.metrics and m in base.metrics
            }
        rows.append(PromptRow(prompt=prompt, base=base, adapter=adapter, difference=difference))
    if sort != "prompt":
        metric = sort.lstrip("-")
        sign = 1 if sort.startswith("-") else -1
        rows.sort(key=lambda r: (metric not in r.difference, sign * r.difference.get(metric, 0)))
    return rows
