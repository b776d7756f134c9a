"""Model judges: defining them, and running one over a study. The only code that writes Judge,
JudgeRun and JudgeVerdict rows.

A run asks about every non-gold comparison in both orders, skipping the (comparison, order)
pairs that already have a verdict: a run that stopped (token budget, errors, a killed worker) is
resumed by starting another. Each verdict is stored with the run's counters and heartbeat in
one transaction as it comes; a question that gets no usable reply is recorded in the run's
``errors`` and stores nothing. A run whose worker died is closed as interrupted by the next
``manage.py judge`` or judge task to start (``judge_runs_mark_orphans``), by the rule training
runs follow (``trainer.services.workers``). The prompt, the reply's parsing and the two orders
are ``evalhub.judging``'s; the backends live in ``evalhub.services.judge_backends``.
"""

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from evalhub.judging import pairwise
from evalhub.models import Judge, JudgeBackend, JudgeRun, JudgeRunStatus, Study
from evalhub.selectors.judging import DEFAULT_JUDGE, judge_missing, judge_tokens_spent
from trainer.services.run_queue import task_fail_orphaned
from trainer.services.workers import worker_id, worker_stopped

NAME_INVALID = "A judge name is a slug (letters, digits, - and _): {name!r}."
NAME_TAKEN = "A judge named {name!r} already exists."
BACKEND_UNKNOWN = "Unknown judge backend {backend!r}; use local or http."
URL_INVALID = "An http judge needs a base URL starting with http:// or https://, got {url!r}."
URL_FOR_LOCAL = "A local judge takes no base URL or key; got {url!r}."
ENV_INVALID = "api_key_env names an environment variable (A-Z, 0-9, _), got {name!r}."
LIMIT_INVALID = "{field} must be {rule}; got {value!r}."
MODEL_EMPTY = "A judge needs a model."
TOO_LONG = "{field} is at most {limit} characters; got {length}."
KEY_MISSING = "Judge {judge!r} reads its key from ${var}, which is not set in this process."
UNKNOWN_JUDGE = "No judge named {name!r}. Known: {known}. Define one with manage.py judge_add."
NO_COMPARISONS = "Study {study!r} has no comparisons a judge can answer (gold items are not)."
BUDGET_REACHED = (
    "Token budget of {budget} for judge {judge!r} on this study reached ({spent} used); raise "
    "the judge's token_budget and run it again to go on."
)
ERRORS_LEFT = (
    "{count} of {asked} questions got no verdict (see the errors); run the judge again to ask "
    "them again."
)
STOPPED = "Stopped: {error}"
ORPHANED = (
    "worker {worker} stopped reporting (last heartbeat {heartbeat}); the {verdicts} verdicts it "
    "stored are kept: run the judge again to ask the rest."
)

MAX_COUNT = 2_147_483_647  # the largest count the database column holds
SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,80}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class JudgeError(ValueError):
    """A judge that cannot be defined or run as asked; ``field`` names the input at fault
    (a ``judge_create`` argument, or "judge" / "study"), "" when it is none of them."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@transaction.atomic
def judge_create(
    *,
    name: str,
    backend: str = JudgeBackend.LOCAL,
    model: str = DEFAULT_JUDGE,
    base_url: str = "",
    api_key_env: str = "",
    template: str = "",
    use_reference: bool = False,
    max_tokens: int = 16,
    temperature: float = 0.0,
    timeout_s: float = 60.0,
    max_retries: int = 3,
    concurrency: int = 4,
    token_budget: int = 0,
    created_by: AbstractBaseUser | None = None,
) -> Judge:
    """A new judge, checked: nothing is loaded and no endpoint is called."""
    _check_definition(name, backend, model, base_url, api_key_env, template)
    limits = [
        ("max_tokens", max_tokens, 1 <= max_tokens <= MAX_COUNT, f"between 1 and {MAX_COUNT}"),
        ("temperature", temperature, temperature >= 0, "0 or more"),
        ("timeout_s", timeout_s, timeout_s > 0, "positive"),
        ("max_retries", max_retries, 0 <= max_retries <= 10, "between 0 and 10"),
        ("concurrency", concurrency, 1 <= concurrency <= 64, "between 1 and 64"),
        (
            "token_budget",
            token_budget,
            0 <= token_budget <= MAX_COUNT,
            f"between 0 (none) and {MAX_COUNT}",
        ),
    ]
    for field, value, ok, rule in limits:
        if not ok:
            raise JudgeError(LIMIT_INVALID.format(field=field, rule=rule, value=value), field=field)
    return Judge.objects.create(
        name=name,
        backend=backend,
        model=model,
        base_url=base_url,
        api_key_env=api_key_env,
        template=template,
        use_reference=use_reference,
        max_tokens=max_tokens,
        temperature=temperature,
        timeout_s=timeout_s,
        max_retries=max_retries,
        concurrency=concurrency,
        token_budget=token_budget,
        created_by=created_by,
    )


def _check_definition(
    name: str, backend: str, model: str, base_url: str, api_key_env: str, template: str
) -> None:
    from trainer.engine.model_store import ModelNotFound, check_model_spec

    if not SLUG.match(name):
        raise JudgeError(NAME_INVALID.format(name=name), field="name")
    if Judge.objects.filter(name=name).exists():
        raise JudgeError(NAME_TAKEN.format(name=name), field="name")
    for field, value in (("model", model), ("base_url", base_url), ("api_key_env", api_key_env)):
        limit = Judge._meta.get_field(field).max_length
        if len(value) > limit:
            message = TOO_LONG.format(field=field, limit=limit, length=len(value))
            raise JudgeError(message, field=field)
    if backend not in JudgeBackend.values:
        raise JudgeError(BACKEND_UNKNOWN.format(backend=backend), field="backend")
    if not model.strip():
        raise JudgeError(MODEL_EMPTY, field="model")
    if backend == JudgeBackend.HTTP and not base_url.startswith(("http://", "https://")):
        raise JudgeError(URL_INVALID.format(url=base_url), field="base_url")
    if backend == JudgeBackend.LOCAL:
        if base_url or api_key_env:
            field = "base_url" if base_url else "api_key_env"
            raise JudgeError(URL_FOR_LOCAL.format(url=base_url or api_key_env), field=field)
        try:
            check_model_spec(model)
        except ModelNotFound as error:
            raise JudgeError(str(error), field="model") from error
    if api_key_env and not ENV_NAME.match(api_key_env):
        raise JudgeError(ENV_INVALID.format(name=api_key_env), field="api_key_env")
    if template:
        try:
            pairwise.check_template(template)
        except ValueError as error:
            raise JudgeError(str(error), field="template") from error


def judge_named(*, name: str) -> Judge:
    """The judge called ``name``; the packaged SmolLM2-135M judge is defined on first use."""
    judge = Judge.objects.filter(name=name).first()
    if judge is not None:
        return judge
    if name == DEFAULT_JUDGE:
        return judge_create(name=DEFAULT_JUDGE)
    known = ", ".join(Judge.objects.values_list("name", flat=True)) or DEFAULT_JUDGE
    raise JudgeError(UNKNOWN_JUDGE.format(name=name, known=known), field="judge")


def judge_api_key(judge: Judge) -> str:
    """The key from the environment variable the judge names ("" when it names none)."""
    if not judge.api_key_env:
        return ""
    key = os.environ.get(judge.api_key_env, "")
    if not key:
        raise JudgeError(KEY_MISSING.format(judge=judge.name, var=judge.api_key_env))
    return key


@transaction.atomic
def judge_run_create(*, judge: Judge, study: Study) -> JudgeRun:
    """A queued run of ``judge`` over ``study``; refused for a study with nothing to judge."""
    if not study.comparisons.filter(is_gold=False).exists():
        raise JudgeError(NO_COMPARISONS.format(study=study.name), field="study")
    return JudgeRun.objects.create(judge=judge, study=study)


@dataclass(frozen=True)
class Question:
    comparison_id: int
    order: str
    messages: list[dict[str, str]]


@dataclass(frozen=True)
class Answer:
    """What a backend got for one question: a reply text (or, locally, a choice already read
    from the model) with its cost, or an error message."""

    text: str = ""
    choice: str = ""  # shown terms, when the backend read it itself
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: int = 0
    error: str = ""
    fatal: bool = False


def judge_questions(*, judge: Judge, study: Study) -> list[Question]:
    """The questions still open, rendered with the study's criteria and guidelines."""
    criteria = [str(c) for c in study.criteria or []]
    questions = []
    for comparison, order in judge_missing(judge=judge, study=study):
        pair = pairwise.PairText(
            prompt=comparison.prompt.text,
            output_a=comparison.output_a.text,
            output_b=comparison.output_b.text,
            reference=comparison.prompt.reference,
        )
        messages = pairwise.render(
            pair,
            order,
            template=judge.template,
            criteria=criteria,
            guidelines=study.guidelines,
            use_reference=judge.use_reference,
        )
        questions.append(Question(comparison.pk, order, messages))
    return questions


class Recorder:
    """Stores what a backend hands back, one question at a time, and says when to stop."""

    def __init__(self, run: JudgeRun) -> None:
        self.run = run
        self.spent_before = judge_tokens_spent(judge=run.judge, study=run.study)
        self.asked = 0
        self.failed = 0
        self.stopped = ""

    def may_go_on(self) -> bool:
        """False once the run must stop: the token budget is spent or an error was fatal."""
        budget = self.run.judge.token_budget
        spent = self.spent_before + self.run.tokens_used
        if budget and spent >= budget and not self.stopped:
            self.stopped = BUDGET_REACHED.format(
                budget=budget, judge=self.run.judge.name, spent=spent
            )
        return not self.stopped

    def record(self, question: Question, answer: Answer) -> None:
        self.asked += 1
        error = answer.error
        choice = answer.choice
        if not error and not choice:
            try:
                choice = pairwise.parse_reply(answer.text)
            except pairwise.ReplyError as reply_error:
                error = str(reply_error)
        with transaction.atomic():
            run = self.run
            run.tokens_used += answer.prompt_tokens + answer.completion_tokens
            if error:
                self.failed += 1
                run.errors.append(
                    {"comparison": question.comparison_id, "order": question.order, "error": error}
                )
            elif self._store(question, answer, choice):
                run.verdicts_done += 1
            run.heartbeat_at = timezone.now()
            run.save(update_fields=["tokens_used", "errors", "verdicts_done", "heartbeat_at"])
        if answer.fatal and not self.stopped:
            self.stopped = STOPPED.format(error=error)

    def _store(self, question: Question, answer: Answer, choice: str) -> bool:
        try:
            with transaction.atomic():
                self.run.judge.verdicts.create(
                    comparison_id=question.comparison_id,
                    order=question.order,
                    choice=pairwise.to_storage(choice, question.order),
                    raw=answer.text,
                    prompt_tokens=answer.prompt_tokens,
                    completion_tokens=answer.completion_tokens,
                    latency_ms=answer.latency_ms,
                )
        except IntegrityError:  # another run stored this one meanwhile: keep theirs
            return False
        return True


def judge_run_execute(
    *, run: JudgeRun, progress: Callable[[int, int], None] | None = None
) -> JudgeRun:
    """Answer the run's open questions and close the run: succeeded when every question has a
    verdict, failed (with the reason) otherwise. A judge's or an endpoint's failure is the run's
    result, not an exception; anything else still fails the run before it propagates, so no
    run is left "running" by a crash."""
    from evalhub.services.judge_backends import answer_all

    run.status, run.worker = JudgeRunStatus.RUNNING, worker_id()
    run.started_at = run.heartbeat_at = timezone.now()
    run.save(update_fields=["status", "worker", "started_at", "heartbeat_at"])
    recorder = Recorder(run)
    try:
        questions = judge_questions(judge=run.judge, study=run.study)
        answer_all(run.judge, questions, recorder, progress=progress)
    except JudgeError as error:
        recorder.stopped = str(error)
    except Exception as error:
        _close(run, JudgeRunStatus.FAILED, f"{type(error).__name__}: {error}")
        raise
    if recorder.stopped:
        return _close(run, JudgeRunStatus.FAILED, recorder.stopped)
    if recorder.failed:
        message = ERRORS_LEFT.format(count=recorder.failed, asked=recorder.asked)
        return _close(run, JudgeRunStatus.FAILED, message)
    return _close(run, JudgeRunStatus.SUCCEEDED, "")


def _close(run: JudgeRun, status: str, error: str, *, now: datetime | None = None) -> JudgeRun:
    run.status, run.error, run.finished_at = status, error, now or timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])
    return run


def judge_runs_mark_orphans(*, now: datetime | None = None) -> list[JudgeRun]:
    """Runs left "running" by a dead worker become "interrupted", and their task rows fail
    (``trainer.services.workers.worker_stopped`` decides, as for training runs). Called where
    a judge command or a judge task starts; never by a page."""
    from evalhub import tasks

    now = now or timezone.now()
    orphans = []
    with transaction.atomic():
        for run in JudgeRun.objects.select_for_update().filter(status=JudgeRunStatus.RUNNING):
            last = run.heartbeat_at or run.started_at or run.created_at
            if worker_stopped(worker=run.worker, last_seen=last, now=now):
                message = ORPHANED.format(
                    worker=run.worker or "?", heartbeat=last, verdicts=run.verdicts_done
                )
                orphans.append(_close(run, JudgeRunStatus.INTERRUPTED, message, now=now))
        for run in orphans:
            task_fail_orphaned(task=tasks.judge, kwargs={"judge_run_id": run.pk}, error=run.error)
    return orphans


def judge_run_enqueue(*, judge: Judge, study: Study) -> JudgeRun:
    """A queued run and its task: a local judge's on the "gpu" queue, an HTTP judge's on
    "default" (it needs no accelerator). The task is enqueued once the run is committed; a run
    of this judge on this study still waiting in the queue is returned instead of a second."""
    from evalhub import tasks

    with transaction.atomic():
        waiting = JudgeRun.objects.select_for_update().filter(
            judge=judge, study=study, status=JudgeRunStatus.QUEUED
        )
        if waiting.exists():
            return waiting.first()
        run = judge_run_create(judge=judge, study=study)
        queue = "default" if judge.backend == JudgeBackend.HTTP else tasks.GPU_QUEUE
        task = tasks.judge.using(queue_name=queue)
        transaction.on_commit(lambda: task.enqueue(judge_run_id=run.pk))
    return run
