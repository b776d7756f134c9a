"""Outputs from a served model: an OpenAI-compatible endpoint (vLLM serving the adapter as a LoRA
module, llama.cpp's server, a hosted API) answers a run's or a dataset's held-out prompts.

The endpoint is asked through the client the model judge uses (``evalhub.chat_client``), a few
calls in flight at once. Before anything is written the endpoint must list the model
(``GET …/models``): an unreachable server, a refused key or a model name it does not serve
leave the database untouched.

Where the outputs go:
- a run's base or adapter system, found by ``(run, kind)`` as for local generation: for a server
  that serves the run's base model, or the run's adapter as a LoRA module;
- otherwise an imported system of the given name, for the dataset's prompts.

What produced the outputs is recorded in the system's ``decoding`` beside the settings: the
endpoint (without credentials), the model name and what the server lists for it. As for local
generation, outputs made otherwise are not mixed into one system unless ``overwrite`` replaces
them.

Resumable rather than atomic: each answer is stored as it comes back. A prompt whose call failed
(after the client's retries) stays missing and is reported; a fatal error (the server went
away, the key was refused) stops new calls. Running the same command again asks only for what
is missing. Empty answers are stored flagged "empty", as local generation stores them, except
when the system has no non-empty answer at all: that is a server or template problem, not a
model's answer, so they are not kept and the call is refused.
"""

import time
from dataclasses import dataclass

import httpx
from django.db import transaction

from evalhub.chat_client import CallError, Endpoint, chats_in_flight, served_models
from evalhub.models import RUN_KINDS, Output, Prompt, System
from evalhub.selectors.outputs import OutputsError
from evalhub.services.outputs import (
    GenerationReport,
    outputs_store,
    prompts_prepare,
    system_outputs_prepare,
)
from evalhub.services.systems import (
    BAD_SYSTEMS,
    system_get_or_create,
    system_imported_get_or_create,
)
from trainer.engine.generate import DecodingConfig, GeneratedText
from trainer.models import Dataset, FineTuneRun, Split
from trainer.selectors.runs import evaluation_dataset

MODEL_NOT_LISTED = "the endpoint {url} serves no model {model!r}; it lists: {listed}"
BAD_CONCURRENCY = "concurrency must be at least 1, got {value}"
BAD_TARGET = "give either a run and its kind (base or adapter) or a dataset and a system name"
FROM_A_FILE = (
    "system {name!r} holds outputs imported from a file; served outputs go into a system of "
    "their own (another name)"
)
STOPPED = (
    "stopped after {stored} of {total} answers were stored: {error}. Run the same command "
    "again to ask for the {left} missing"
)
SOME_FAILED = (
    "{failed} of {total} prompts got no answer, first: {error}. The other answers are stored; "
    "run the same command again to ask for the missing ones"
)
ALL_EMPTY = (
    "the endpoint {url} answered every prompt with empty text ({count}); nothing was kept. "
    "Check the model's chat template and the server's logs"
)

# The fields of a ``GET /models`` entry that say what is served: vLLM gives a LoRA module's
# ``root`` (where the adapter was loaded from) and ``parent`` (its base model).
SERVED_FIELDS = ("id", "root", "parent")


@dataclass(frozen=True)
class ServedReport(GenerationReport):
    empty: int = 0


class ServedIncomplete(OutputsError):
    """Some answers are stored, some are missing: asking again resumes."""


def served_model(*, endpoint: Endpoint) -> dict:
    """What the endpoint lists for ``endpoint.model``, or an error saying why there is none."""
    try:
        with httpx.Client() as client:
            listed = served_models(client, endpoint)
    except CallError as error:
        raise OutputsError(str(error)) from error
    entry = next((m for m in listed if m["id"] == endpoint.model), None)
    if entry is None:
        names = ", ".join(repr(m["id"]) for m in listed) or "nothing"
        raise OutputsError(
            MODEL_NOT_LISTED.format(url=endpoint.public_url, model=endpoint.model, listed=names)
        )
    return {field: entry[field] for field in SERVED_FIELDS if entry.get(field)}


def outputs_generate_served(
    *,
    endpoint: Endpoint,
    decoding: DecodingConfig,
    run: FineTuneRun | None = None,
    kind: str = "",
    dataset: Dataset | None = None,
    system_name: str = "",
    split: str = Split.TEST,
    overwrite: bool = False,
    concurrency: int = 4,
) -> ServedReport:
    """The served model answers the split's prompts of ``run`` (into its ``kind`` system) or of
    ``dataset`` (into the imported system ``system_name``); see the module docstring."""
    if concurrency < 1:
        raise OutputsError(BAD_CONCURRENCY.format(value=concurrency))
    if (run is None) == (dataset is None) or (dataset is not None and not system_name):
        raise OutputsError(BAD_TARGET)
    if run is not None:
        if kind not in RUN_KINDS:
            raise OutputsError(BAD_SYSTEMS.format(value=kind))
        dataset = evaluation_dataset(run=run)
    served = served_model(endpoint=endpoint)
    wanted = {
        **decoding.as_dict(),
        "endpoint": endpoint.public_url,
        "model": endpoint.model,
        "served": served,
    }
    prompts = prompts_prepare(dataset=dataset, split=split)
    with transaction.atomic():
        if run is not None:
            system = system_get_or_create(run=run, kind=kind)
        else:
            description = f"served by {endpoint.model} at {endpoint.public_url}"
            system = system_imported_get_or_create(name=system_name, description=description)
            if not system.decoding and system.outputs.exists():
                raise OutputsError(FROM_A_FILE.format(name=system.name))
        missing = system_outputs_prepare(
            system=system, prompts=prompts, wanted=wanted, overwrite=overwrite
        )
    started = time.perf_counter()
    empty = _ask_and_store(endpoint, decoding, system, missing, concurrency)
    return ServedReport(
        system=system.name,
        generated=len(missing),
        kept=len(prompts) - len(missing),
        seconds=round(time.perf_counter() - started, 2),
        empty=empty,
    )


def _ask_and_store(
    endpoint: Endpoint,
    decoding: DecodingConfig,
    system: System,
    prompts: list[Prompt],
    concurrency: int,
) -> int:
    """Ask for every prompt, store each answer as it comes; the number of empty answers kept.
    Raises ``ServedIncomplete`` when some prompts got no answer."""
    errors: list[CallError] = []
    empty: list[tuple[Prompt, GeneratedText]] = []
    stored = 0

    def go_on() -> bool:
        return not any(error.fatal for error in errors)

    replies = chats_in_flight(
        endpoint,
        prompts,
        lambda prompt: prompt.messages,
        concurrency=concurrency,
        go_on=go_on,
        max_tokens=decoding.max_new_tokens,
        temperature=decoding.temperature,
        top_p=decoding.top_p,
        seed=decoding.seed,
    )
    for prompt, reply in replies:
        if isinstance(reply, CallError):
            errors.append(reply)
            continue
        answer = GeneratedText(reply.text, reply.completion_tokens, reply.latency_ms)
        if answer.text.strip():
            stored += outputs_store(system=system, items=[(prompt, answer)])
        else:
            empty.append((prompt, answer))
    if empty:
        others = Output.objects.filter(system=system).exclude(prompt__in=[p for p, _ in empty])
        if not others.exclude(text__regex=r"^\s*$").exists():
            raise ServedIncomplete(ALL_EMPTY.format(url=endpoint.public_url, count=len(empty)))
        stored += outputs_store(system=system, items=empty)
    fatal = next((e for e in errors if e.fatal), None)
    if fatal is not None:
        left = len(prompts) - stored
        raise ServedIncomplete(
            STOPPED.format(stored=stored, total=len(prompts), error=fatal, left=left)
        )
    if errors:
        raise ServedIncomplete(
            SOME_FAILED.format(failed=len(errors), total=len(prompts), error=errors[0])
        )
    return len(empty)
