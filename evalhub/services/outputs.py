"""Generating a run's outputs and storing them: the only code that writes generated Output rows.

Generation itself is plain Python (``trainer.engine.generate``); this module feeds it database
rows and stores each batch as it comes back.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from evalhub.metrics import EMPTY_FLAG
from evalhub.models import RUN_KINDS, Output, Prompt, System
from evalhub.selectors.outputs import OutputsError, evaluation_prompts
from evalhub.services.prompts import prompts_create_from_split
from evalhub.services.systems import (
    BAD_SYSTEMS,
    adapter_dir,
    outputs_in_study_check,
    system_get_or_create,
)
from trainer.engine.generate import DecodingConfig, GeneratedText
from trainer.models import Dataset, FineTuneRun, Split
from trainer.selectors.runs import evaluation_dataset

NO_PROMPTS = "dataset {dataset!r} has no {split} examples with a user turn to evaluate"
DECODING_CHANGED = (
    "system {name!r} already has outputs generated with other settings ({changes}): "
    "use the same settings, or --overwrite to regenerate them"
)


def settings_changes(old: dict, new: dict) -> str:
    """The settings that differ, by name: "seed None → 1, temperature 0.0 → 0.7". Sorted, so
    the message reads the same whatever order the database returns a JSON object's keys in."""
    return ", ".join(
        f"{name} {old.get(name)!r} → {new.get(name)!r}"
        for name in sorted(old.keys() | new.keys())
        if old.get(name) != new.get(name)
    )


def prompts_prepare(*, dataset: Dataset, split: str) -> list[Prompt]:
    """The split's evaluation prompts, made from its examples first where missing; an
    ``OutputsError`` where the split has none to evaluate."""
    prompts_create_from_split(dataset=dataset, split=split)
    prompts = list(evaluation_prompts(dataset=dataset, split=split))
    if not prompts:
        raise OutputsError(NO_PROMPTS.format(dataset=dataset.name, split=split))
    return prompts


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


def system_outputs_prepare(
    *, system: System, prompts: list[Prompt], wanted: dict, overwrite: bool
) -> list[Prompt]:
    """The prompts this system still has to answer; records the settings used (``wanted``: the
    decoding settings and what produced the outputs), refusing to mix other settings in unless
    ``overwrite`` replaces the old outputs."""
    existing = Output.objects.filter(system=system)
    if existing.exists() and system.decoding and system.decoding != wanted:
        if not overwrite:
            raise OutputsError(
                DECODING_CHANGED.format(
                    name=system.name, changes=settings_changes(system.decoding, wanted)
                )
            )
        # Every output of a system shares one setting: the old ones all go.
        outputs_in_study_check(system, existing)
        existing.delete()
    elif overwrite:
        outputs_in_study_check(system, existing.filter(prompt__in=prompts))
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
    systems: Sequence[str] = RUN_KINDS,
    overwrite: bool = False,
    batch_size: int | None = None,
    progress: bool = False,
    device: str | None = None,
    quantization: str = "auto",
    on_system: Callable[[GenerationReport], None] | None = None,
) -> list[GenerationReport]:
    """Answer the split's prompts with the run's base model and/or adapter, loading it once.

    The decoding settings and the precision (quantization, compute dtype, merged adapter) are
    recorded on each System; outputs made otherwise are not mixed in unless ``overwrite``
    replaces them. ``batch_size`` None: the engine's choice (from free memory on its fast path).
    Resumable rather than atomic: each batch is stored as it is generated, and a later call
    generates only the prompts still missing (``overwrite`` regenerates them all).
    """
    from trainer.engine import generate as generation
    from trainer.engine.model_store import ModelNotFound, resolve_model_dir

    if not systems or any(kind not in RUN_KINDS for kind in systems):
        raise OutputsError(BAD_SYSTEMS.format(value=",".join(systems)))
    adapter = adapter_dir(run) if "adapter" in systems else None
    dataset = evaluation_dataset(run=run)
    prompts = prompts_prepare(dataset=dataset, split=split)
    try:
        # Needed before anything is generated: on CUDA the precision depends on the model's size.
        model_dir = resolve_model_dir(run.base_model.source, settings.EVALHUB_MODEL_CACHE)
    except ModelNotFound as error:
        raise OutputsError(str(error)) from error
    precision = generation.resolve_precision(device, quantization, model_dir=model_dir)
    wanted = {**decoding.as_dict(), **precision.as_dict()}
    todo = {}
    with transaction.atomic():  # a refusal for one system leaves the other untouched too
        for kind in RUN_KINDS:
            if kind in systems:
                system = system_get_or_create(run=run, kind=kind)
                missing = system_outputs_prepare(
                    system=system, prompts=prompts, wanted=wanted, overwrite=overwrite
                )
                todo[kind] = (system, missing)

    loaded = None
    if any(missing for _, missing in todo.values()):
        loaded = generation.load_model(
            model_dir,
            adapter_dir=adapter,
            device=precision.device,
            quantization=precision.quantization,
            dtype=precision.dtype,
            lora=precision.lora,
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
