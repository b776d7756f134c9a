"""The two ways of asking a judge, fed questions and handing each answer to the run's recorder
as it comes (``evalhub.services.judging``).

HTTP: up to ``judge.concurrency`` calls in flight (``evalhub.chat_client.chats_in_flight``), in
the process running the judge (a worker or the command, never the web process); answers are
stored by the calling thread, one at a time. No new call starts once the budget is spent or an error
was fatal; calls in flight finish, so a budget can be overrun by at most ``concurrency`` calls.

Local: the model is loaded once through the trainer's loading path, the questions are answered
in batches, each batch stored before the next starts.
"""

from collections.abc import Callable, Sequence

from django.conf import settings

from evalhub.models import Judge, JudgeBackend
from evalhub.services.judging import Answer, JudgeError, Question, Recorder, judge_api_key

LOCAL_BATCH = 8
MODEL_UNLOADABLE = "judge model {model!r} cannot be loaded: {error}"


def answer_all(
    judge: Judge,
    questions: Sequence[Question],
    recorder: Recorder,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    if not questions:
        return
    answer = _answer_http if judge.backend == JudgeBackend.HTTP else _answer_local
    answer(judge, questions, recorder, progress or (lambda done, total: None))


def _answer_http(
    judge: Judge,
    questions: Sequence[Question],
    recorder: Recorder,
    progress: Callable[[int, int], None],
) -> None:
    from evalhub.chat_client import CallError, Endpoint, chats_in_flight

    endpoint = Endpoint(
        base_url=judge.base_url,
        model=judge.model,
        api_key=judge_api_key(judge),
        timeout_s=judge.timeout_s,
        max_retries=judge.max_retries,
    )
    replies = chats_in_flight(
        endpoint,
        questions,
        lambda question: question.messages,
        concurrency=judge.concurrency,
        go_on=recorder.may_go_on,
        max_tokens=judge.max_tokens,
        temperature=judge.temperature,
    )
    for question, reply in replies:
        if isinstance(reply, CallError):
            answer = Answer(error=str(reply), fatal=reply.fatal)
        else:
            answer = Answer(
                text=reply.text,
                prompt_tokens=reply.prompt_tokens,
                completion_tokens=reply.completion_tokens,
                latency_ms=reply.latency_ms,
            )
        recorder.record(question, answer)
        progress(recorder.asked, len(questions))


def _answer_local(
    judge: Judge,
    questions: Sequence[Question],
    recorder: Recorder,
    progress: Callable[[int, int], None],
) -> None:
    from evalhub.judging.local import LocalJudge
    from trainer.engine.model_store import ModelNotFound, resolve_model_dir

    try:
        model_dir = resolve_model_dir(judge.model, settings.EVALHUB_MODEL_CACHE)
        local = LocalJudge(model_dir)
    except (ModelNotFound, OSError, ValueError) as error:
        raise JudgeError(MODEL_UNLOADABLE.format(model=judge.model, error=error)) from error
    for start in range(0, len(questions), LOCAL_BATCH):
        if not recorder.may_go_on():
            return
        batch = questions[start : start + LOCAL_BATCH]
        scored = local.judge([q.messages for q in batch], batch_size=LOCAL_BATCH)
        for question, item in zip(batch, scored, strict=True):
            answer = Answer(
                text=item.raw,
                choice=item.choice,
                prompt_tokens=item.prompt_tokens,
                latency_ms=item.latency_ms,
            )
            recorder.record(question, answer)
        progress(recorder.asked, len(questions))
