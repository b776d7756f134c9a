"""Background tasks of the evaluation app: generate, score, and evaluate (both), per run; and
the runs of model judges over a study.

Thin wrappers over ``evalhub.services.outputs``, the same functions ``manage.py generate``,
``score`` and ``evaluate`` call. They load models, so they go to the "gpu" queue. Every run's
task takes ``run_id`` as a keyword so the run page can list them
(``evalhub.selectors.run_tasks``); a judge's takes ``judge_run_id``.
Return values are small JSON summaries; the outputs and metrics themselves are in the database.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django_tasks import task

from evalhub.models import RUN_KINDS, JudgeRun
from evalhub.selectors.outputs import run_get
from evalhub.services.judging import judge_run_execute, judge_runs_mark_orphans
from evalhub.services.outputs import outputs_generate
from evalhub.services.scores import outputs_score
from trainer.engine.generate import DecodingConfig
from trainer.models import Split

GPU_QUEUE = "gpu"


@task(queue_name=GPU_QUEUE)
def generate(
    *,
    run_id: int,
    split: str = Split.TEST,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
    systems: list[str] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Base and adapter answer the split's prompts (only the missing ones, unless
    ``overwrite``), with the same decoding settings."""
    reports = outputs_generate(
        run=run_get(run_id=run_id),
        decoding=DecodingConfig(
            max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed
        ),
        split=split,
        systems=systems or list(RUN_KINDS),
        overwrite=overwrite,
    )
    return {"run": run_id, "generated": [asdict(r) for r in reports]}


@task(queue_name=GPU_QUEUE)
def score(*, run_id: int, split: str = Split.TEST) -> dict[str, Any]:
    """ROUGE and BERTScore (the packaged encoder) of every output on the run's prompts."""
    report = outputs_score(run=run_get(run_id=run_id), split=split)
    return {"run": run_id, "scored": asdict(report)}


@task(queue_name=GPU_QUEUE)
def evaluate(
    *,
    run_id: int,
    split: str = Split.TEST,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
) -> dict[str, Any]:
    """Generate what is missing, then score: what the run page's "Generate + score" queues."""
    generated = generate.call(
        run_id=run_id,
        split=split,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
    )
    scored = score.call(run_id=run_id, split=split)
    return {**generated, **scored}


class JudgeRunFailed(Exception):
    """The task of a judge run that failed fails with it, with the run's error."""


@task(queue_name=GPU_QUEUE)
def judge(*, judge_run_id: int) -> dict[str, Any]:
    """Run a queued judge run (``evalhub.services.judging``). A local judge's task goes to the
    "gpu" queue; an HTTP judge's is enqueued on "default" (``judge_run_enqueue``)."""
    # A worker taking a task is where a judge run left behind by a dead worker gets noticed.
    judge_runs_mark_orphans()
    run = judge_run_execute(
        run=JudgeRun.objects.select_related("judge", "study").get(pk=judge_run_id)
    )
    if run.error:
        raise JudgeRunFailed(run.error)
    return {"judge_run": run.pk, "status": run.status, "verdicts": run.verdicts_done}
