"""Evaluation prompts, a run's base and adapter systems, their outputs and metrics.

The only code that writes System, Prompt and Output rows for automated evaluation. Generation
and scoring themselves are plain Python (trainer.engine.generate, evalhub.metrics); this module
feeds them database rows and stores what comes back.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet

from evalhub.metrics import EMPTY_FLAG, METRICS
from evalhub.metrics.bertscore import Encoder, default_encoder
from evalhub.metrics.scoring import PairScore, score_pairs
from evalhub.metrics.summary import metric_intervals, paired_difference
from evalhub.models import Comparison, Output, Prompt, System, SystemKind
from trainer.engine.generate import DecodingConfig, GeneratedText
from trainer.models import Dataset, FineTuneRun, Split

RUN_NOT_FOUND = "run {run_id} does not exist"
DATASET_NOT_FOUND = "dataset {name!r} does not exist"
BAD_SPLIT = "split must be one of train, validation, test; got {split!r}"
NO_ADAPTER = "run {run_id} has no adapter yet (adapter_path is empty); train it first"
ADAPTER_MISSING = "run {run_id}: adapter directory {path} does not exist"
BAD_SYSTEMS = "systems must be a non-empty subset of base, adapter; got {value!r}"
NO_PROMPTS = "dataset {dataset!r} has no {split} examples with a user turn to evaluate"
DECODING_CHANGED = (
    "system {name!r} already has outputs generated with {old}, not {new}: "
    "use the same settings, or --overwrite to regenerate them"
)
OUTPUT_IN_STUDY = (
    "{count} output(s) of system {name!r} are part of a study; they cannot be replaced"
)
SYSTEM_NAME_TAKEN = "system name {name!r} is already used by a system of another kind or run"

SYSTEM_KINDS = ("base", "adapter")


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


def adapter_dir(run: FineTuneRun) -> Path:
    """The run's saved adapter, or an error saying why there is none."""
    if not run.adapter_path:
        raise OutputsError(NO_ADAPTER.format(run_id=run.pk))
    path = Path(run.adapter_path)
    if not path.is_dir():
        raise OutputsError(ADAPTER_MISSING.format(run_id=run.pk, path=path))
    return path


# --- prompts -------------------------------------------------------------------------------


def split_conversation(messages: Sequence[dict]) -> tuple[list[dict], str] | None:
    """(conversation up to the last user turn, the assistant answer after it) or None when the
    conversation has no user turn. The reference is "" when no assistant turn follows."""
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if not users:
        return None
    last_user = users[-1]
    answers = [m for m in messages[last_user + 1 :] if m.get("role") == "assistant"]
    return list(messages[: last_user + 1]), (answers[-1]["content"] if answers else "")


@dataclass(frozen=True)
class PromptSync:
    created: int
    existing: int
    without_user_turn: int


@transaction.atomic
def prompts_create_from_split(*, dataset: Dataset, split: str = Split.TEST) -> PromptSync:
    """One Prompt per example of the split; examples that already have one are left alone."""
    if split not in Split.values:
        raise OutputsError(BAD_SPLIT.format(split=split))
    done = set(
        Prompt.objects.filter(dataset=dataset, example__isnull=False).values_list(
            "example_id", flat=True
        )
    )
    new, existing, skipped = [], 0, 0
    for example in dataset.examples.filter(split=split).order_by("index"):
        if example.pk in done:
            existing += 1
            continue
        parts = split_conversation(example.messages)
        if parts is None:
            skipped += 1
            continue
        messages, reference = parts
        new.append(Prompt(dataset=dataset, example=example, messages=messages, reference=reference))
    # ignore_conflicts: a concurrent run creating the same prompts is not an error.
    Prompt.objects.bulk_create(new, ignore_conflicts=True)
    return PromptSync(created=len(new), existing=existing, without_user_turn=skipped)


def evaluation_prompts(*, dataset: Dataset, split: str = Split.TEST) -> QuerySet[Prompt]:
    return Prompt.objects.filter(dataset=dataset, example__split=split).order_by("pk")


# --- systems -------------------------------------------------------------------------------


def base_system_name(run: FineTuneRun) -> str:
    return f"base:{run.base_model.name[:150]}:run-{run.pk}"


def adapter_system_name(run: FineTuneRun) -> str:
    return f"adapter:run-{run.pk}"


@transaction.atomic
def system_get_or_create(*, run: FineTuneRun, kind: str) -> System:
    """The run's base (kind "base") or adapter (kind "adapter") system.

    The base system belongs to the run, not only to the base model, so that its outputs are
    always generated with the same decoding settings as the adapter's they are compared with.
    """
    if kind not in SYSTEM_KINDS:
        raise OutputsError(BAD_SYSTEMS.format(value=kind))
    name = base_system_name(run) if kind == "base" else adapter_system_name(run)
    system, _ = System.objects.get_or_create(
        name=name,
        defaults={
            "kind": kind,
            "run": run,
            "base_model": run.base_model,
            "description": f"{kind} of run {run.pk} ({run.name})",
        },
    )
    if system.kind != kind or system.run_id != run.pk:
        raise OutputsError(SYSTEM_NAME_TAKEN.format(name=name))
    return system


def run_systems(*, run: FineTuneRun) -> dict[str, System | None]:
    """{"base": System | None, "adapter": System | None} for a run, without creating them."""
    names = {"base": base_system_name(run), "adapter": adapter_system_name(run)}
    found = {s.name: s for s in System.objects.filter(run=run, name__in=names.values())}
    return {kind: found.get(name) for kind, name in names.items()}


def scoring_systems(*, run: FineTuneRun) -> QuerySet[System]:
    """The run's own systems and the imported or reference ones that may answer its prompts."""
    return System.objects.filter(
        Q(run=run) | Q(run__isnull=True, kind__in=[SystemKind.IMPORTED, SystemKind.REFERENCE])
    )


# --- storing outputs -----------------------------------------------------------------------


def _refuse_if_in_study(system: System, outputs: QuerySet[Output]) -> None:
    ids = list(outputs.values_list("pk", flat=True))
    in_study = Comparison.objects.filter(Q(output_a__in=ids) | Q(output_b__in=ids)).count()
    if in_study:
        raise OutputsError(OUTPUT_IN_STUDY.format(count=in_study, name=system.name))


@transaction.atomic
def outputs_store(*, system: System, items: Sequence[tuple[Prompt, GeneratedText]]) -> int:
    """Create or replace the system's outputs for these prompts. A replaced output loses its
    metrics (they described the old text)."""
    for prompt, generated in items:
        Output.objects.update_or_create(
            system=system,
            prompt=prompt,
            defaults={
                "text": generated.text,
                "token_count": generated.token_count,
                "latency_ms": generated.latency_ms,
                "metrics": {},
                "metrics_encoder": "",
                "flags": [] if generated.text.strip() else [EMPTY_FLAG],
            },
        )
    return len(items)


def _batch_storer(system: System, prompts: list[Prompt]) -> Callable:
    """Store each generated batch at once, so an interrupted run loses at most one batch."""

    def store(indices: list[int], batch: list[GeneratedText]) -> None:
        outputs_store(
            system=system, items=[(prompts[i], g) for i, g in zip(indices, batch, strict=True)]
        )

    return store


@dataclass(frozen=True)
class GenerationReport:
    system: str
    generated: int
    kept: int
    seconds: float


def _prepare_system(
    system: System, prompts: list[Prompt], wanted: dict, overwrite: bool
) -> list[Prompt]:
    """The prompts this system still has to answer; records the settings used."""
    existing = Output.objects.filter(system=system)
    if existing.exists() and system.decoding and system.decoding != wanted:
        if not overwrite:
            raise OutputsError(
                DECODING_CHANGED.format(name=system.name, old=system.decoding, new=wanted)
            )
        # Every output of a system shares one setting: the old ones all go.
        _refuse_if_in_study(system, existing)
        existing.delete()
    elif overwrite:
        _refuse_if_in_study(system, existing.filter(prompt__in=prompts))
    if system.decoding != wanted:
        system.decoding = wanted
        system.save(update_fields=["decoding"])
    if overwrite:
        return prompts
    answered = set(existing.values_list("prompt_id", flat=True))
    return [p for p in prompts if p.pk not in answered]


def outputs_generate(
    *,
    run: FineTuneRun,
    decoding: DecodingConfig,
    split: str = Split.TEST,
    systems: Sequence[str] = SYSTEM_KINDS,
    overwrite: bool = False,
    batch_size: int = 8,
    progress: bool = False,
    device: str | None = None,
    quantization: str = "auto",
    on_system: Callable[[GenerationReport], None] | None = None,
) -> list[GenerationReport]:
    """Answer the split's prompts with the run's base model and/or adapter, loading it once.

    The decoding settings and the precision (quantization, compute dtype) are recorded on each
    System; outputs made otherwise are not mixed in unless ``overwrite`` replaces them.
    Resumable rather than atomic: each batch is stored as it is generated, and a later call
    generates only the prompts still missing (``overwrite`` regenerates them all).
    """
    from trainer.engine import generate as generation
    from trainer.engine.model_store import ModelNotFound, resolve_model_dir

    if not systems or any(kind not in SYSTEM_KINDS for kind in systems):
        raise OutputsError(BAD_SYSTEMS.format(value=",".join(systems)))
    adapter = adapter_dir(run) if "adapter" in systems else None
    prompts_create_from_split(dataset=run.dataset, split=split)
    prompts = list(evaluation_prompts(dataset=run.dataset, split=split))
    if not prompts:
        raise OutputsError(NO_PROMPTS.format(dataset=run.dataset.name, split=split))
    precision = generation.resolve_precision(device, quantization)
    wanted = {**decoding.as_dict(), **precision.as_dict()}
    todo = {}
    with transaction.atomic():  # a refusal for one system leaves the other untouched too
        for kind in SYSTEM_KINDS:
            if kind in systems:
                system = system_get_or_create(run=run, kind=kind)
                todo[kind] = (system, _prepare_system(system, prompts, wanted, overwrite))

    loaded = None
    if any(missing for _, missing in todo.values()):
        try:
            model_dir = resolve_model_dir(run.base_model.source, settings.EVALHUB_MODEL_CACHE)
        except ModelNotFound as error:
            raise OutputsError(str(error)) from error
        loaded = generation.load_model(
            model_dir,
            adapter_dir=adapter,
            device=precision.device,
            quantization=precision.quantization,
            dtype=precision.dtype,
        )
    reports = []
    for kind, (system, missing) in todo.items():
        started = time.perf_counter()
        if missing:
            generation.generate(
                loaded,
                [p.messages for p in missing],
                decoding=decoding,
                use_adapter=kind == "adapter",
                batch_size=batch_size,
                progress=progress,
                on_batch=_batch_storer(system, missing),
            )
        report = GenerationReport(
            system=system.name,
            generated=len(missing),
            kept=len(prompts) - len(missing),
            seconds=round(time.perf_counter() - started, 2),
        )
        if on_system is not None:
            on_system(report)
        reports.append(report)
    return reports


# --- scoring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreReport:
    scored: int
    empty: int
    skipped: int  # outputs whose prompt has no reference
    encoder: str


def run_outputs(*, run: FineTuneRun, split: str = Split.TEST) -> QuerySet[Output]:
    """Outputs of the run's systems (and imported ones) on the run's evaluation prompts."""
    return Output.objects.filter(
        prompt__in=evaluation_prompts(dataset=run.dataset, split=split),
        system__in=scoring_systems(run=run),
    ).select_related("prompt", "system")


def outputs_score(
    *,
    run: FineTuneRun,
    split: str = Split.TEST,
    encoder: Encoder | None = None,
    batch_size: int = 64,
) -> ScoreReport:
    """ROUGE and BERTScore of every output on the run's prompts, stored on each output.

    Computed outside the transaction (it takes a while); an output whose text changed in the
    meantime keeps no metrics rather than metrics of the old text.
    """
    encoder = encoder or default_encoder()
    outputs = list(run_outputs(run=run, split=split))
    with_reference = [o for o in outputs if o.prompt.reference.strip()]
    scores = score_pairs(
        [o.text for o in with_reference],
        [o.prompt.reference for o in with_reference],
        encoder=encoder,
        batch_size=batch_size,
    )
    skipped = [o for o in outputs if not o.prompt.reference.strip()]
    _store_scores(with_reference, scores, skipped, encoder.identity)
    return ScoreReport(
        scored=len(with_reference),
        empty=sum(s.empty for s in scores),
        skipped=len(skipped),
        encoder=encoder.identity,
    )


@transaction.atomic
def _store_scores(
    outputs: list[Output], scores: list[PairScore], skipped: list[Output], encoder: str
) -> None:
    current = {
        o.pk: o.text
        for o in Output.objects.select_for_update().filter(pk__in=[o.pk for o in outputs + skipped])
    }
    changed = []
    for output, score in zip(outputs, scores, strict=True):
        if current.get(output.pk) != output.text:
            continue
        flags = [f for f in output.flags if f != EMPTY_FLAG]
        output.flags = [*flags, EMPTY_FLAG] if score.empty else flags
        output.metrics, output.metrics_encoder = score.metrics, encoder
        changed.append(output)
    for output in skipped:
        output.metrics, output.metrics_encoder = {}, ""
        changed.append(output)
    Output.objects.bulk_update(changed, ["metrics", "metrics_encoder", "flags"], batch_size=500)


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
    prompts = evaluation_prompts(dataset=run.dataset, split=split)
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
    if difference and systems[ids["base"]].decoding != systems[ids["adapter"]].decoding:
        warnings.append("base and adapter outputs were generated with different settings")
    if any(s["n_unscored"] for s in summary):
        warnings.append("some outputs are not scored yet: run `manage.py score`")
    return {
        "run": run.pk,
        "dataset": run.dataset.name,
        "split": split,
        "prompts": prompts.count(),
        "prompts_without_reference": prompts.filter(reference__regex=r"^\s*$").count(),
        "encoder": encoders[0] if len(encoders) == 1 else None,
        "encoders": encoders,
        "systems": summary,
        "difference": difference,
        "warnings": warnings,
    }


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
    outputs: dict[tuple[int, int], Output] = {
        (o.system_id, o.prompt_id): o
        for o in Output.objects.filter(
            system__in=[s for s in systems.values() if s is not None],
            prompt__in=evaluation_prompts(dataset=run.dataset, split=split),
        )
    }
    rows = []
    for prompt in evaluation_prompts(dataset=run.dataset, split=split):
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
