"""The demo, step by step: accounts, the demo dataset, a short QLoRA run of SmolLM2-135M on CPU,
base vs adapter outputs with their metrics, and an open expert study with gold items.

Every step reuses what an earlier demo left (same dataset content, a succeeded run with the same
settings, outputs already generated and scored, the study, the accounts), so running the demo
again is quick and never duplicates anything. The heavy steps call the same services as the
management commands (``run_execute``, ``outputs_generate``, ``outputs_score``, ``study_create``).

A second study on the same run is rated by simulated raters (``demo_simulated_study``), so the
analysis has real numbers to show before anyone has rated; its guidelines say so first.
"""

from __future__ import annotations

import os
import random
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import transaction

from evalhub import blinding
from evalhub.models import Assignment, Comparison, Judgment, Output, Study, StudyStatus, Verdict
from evalhub.roles import expert_group
from evalhub.selectors.outputs import run_outputs, run_systems
from evalhub.selectors.review import SPLIT, disputed_comparisons
from evalhub.services.accounts import user_create, user_invite
from evalhub.services.adjudication import adjudication_submit
from evalhub.services.gold import gold_load
from evalhub.services.judgments import judgment_submit
from evalhub.services.outputs import outputs_generate
from evalhub.services.scores import outputs_score
from evalhub.services.studies import study_create, study_set_status
from trainer.engine.config import TrainConfig
from trainer.engine.generate import DecodingConfig
from trainer.engine.model_store import DEFAULT_BASE_MODEL
from trainer.models import Dataset, DatasetKind, FineTuneRun, RunStatus, Split
from trainer.services.datasets import ImportSpec, dataset_import
from trainer.services.run_progress import CTRL_C_INTERRUPTS, StopRequest, stop_on_signals
from trainer.services.run_training import run_execute
from trainer.services.runs import (
    RESUMABLE,
    RunError,
    RunSpec,
    run_config,
    run_create,
    run_create_resume,
)

DEMO_DATA = Path(settings.BASE_DIR) / "trainer" / "demo_data"
DATASET_FILE = DEMO_DATA / "demo.jsonl"
GOLD_FILE = DEMO_DATA / "gold.jsonl"
DATASET_NAME = "demo"
# train, validation, feedback, test: 252 / 36 / 36 / 36 of the 360 examples. The feedback prompts
# go to the study whose judgments train the second round; the test prompts only ever judge.
DEMO_SPLIT = (0.7, 0.1, 0.1, 0.1)
STUDY_NAME = "Kitchen conversion desk"
STUDY_CRITERIA = ("correctness", "format")
STUDY_GUIDELINES = (
    "Each item is a cook's unit-conversion question and two answers. The house format is three "
    "lines: **Answer:** the number and unit, **Working:** one line of arithmetic, **Tip:** one "
    "short kitchen tip. Prefer the answer whose number is right; between two right numbers, the "
    "one in the house format. Choose *both bad* when neither gets the number right."
)
# Short enough for a laptop CPU, long enough that the adapter clearly takes up the house format
# (measured: benchmarks/results/demo.md: 32 steps of 8 take the house format 12 of 12 times).
DEMO_STEPS = 32
DEMO_TRAINING = {
    "learning_rate": 1e-3,
    "batch_size": 8,
    "warmup_ratio": 0.05,
    "eval_every": 8,
    "patience": 0,
    "max_seq_len": 256,
}
# The house format is 40–66 tokens; the base model rambles on, so a cap keeps generation short.
DEMO_DECODING = DecodingConfig(max_new_tokens=72)
# Two batches per system: on CPU a batch of 18 costs far less than twice a batch of 8.
GENERATION_BATCH = 18

EXPERT_USERNAME, EXPERT_PASSWORD = "demo-expert", "demo-expert-pass"
MANAGER_USERNAME, MANAGER_PASSWORD = "demo-manager", "demo-manager-pass"

DATASET_REFUSED = "the demo dataset was refused by the linter: {reason}"
RUN_ENDED = "the demo run {id} ended {status}: {error}"
SERVER_SILENT = "the web server did not answer on port {port} within {seconds} s"
RUN_STOPPED = (
    "the demo run {id} stopped at step {step} ({status}); its checkpoint is kept: run the demo "
    "again to continue from it"
)

Log = Callable[[str], None]


class DemoError(RuntimeError):
    """A demo step cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Login:
    username: str
    password: str
    role: str


def demo_log_start() -> Path:
    """This demo's log, emptied: library messages, the web server's and the worker's output."""
    log = Path(settings.DATA_DIR) / "demo.log"
    log.write_text("")
    return log


def demo_training_config(steps: int = DEMO_STEPS) -> TrainConfig:
    return TrainConfig(max_steps=steps, **DEMO_TRAINING)


# --- accounts ------------------------------------------------------------------------------


def _account(username: str, password: str, *, manager: bool) -> AbstractUser:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        user, _ = user_create(username=username, password=password, manager=manager)
        return user
    # An existing demo account gets its role and the printed password back.
    if not user.check_password(password) or not user.is_active:
        user.set_password(password)
        user.is_active = True
        user.save(update_fields=["password", "is_active"])
    if manager and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    if not manager:
        user.groups.add(expert_group())
    return user


def demo_accounts() -> dict[str, AbstractUser]:
    return {
        "manager": _account(MANAGER_USERNAME, MANAGER_PASSWORD, manager=True),
        "expert": _account(EXPERT_USERNAME, EXPERT_PASSWORD, manager=False),
    }


def demo_logins() -> list[Login]:
    return [
        Login(MANAGER_USERNAME, MANAGER_PASSWORD, "manager: runs, studies, analysis"),
        Login(EXPERT_USERNAME, EXPERT_PASSWORD, "expert: rates blinded pairs"),
    ]


# --- dataset -------------------------------------------------------------------------------


def demo_dataset(
    *, created_by: AbstractUser | None = None, count_tokens: Callable[[str], int] | None = None
) -> tuple[Dataset, bool]:
    """(the demo dataset, imported now). An imported dataset with the same content is reused,
    whatever its name; a "demo" dataset with other content is left alone and the file is
    imported under a name carrying its hash."""
    from trainer.datasets import prepare_dataset

    content_hash = prepare_dataset(DATASET_FILE).content_hash
    # One made before the feedback split has no feedback prompts for the second round.
    same = Dataset.objects.filter(content_hash=content_hash, kind=DatasetKind.EXAMPLES)
    existing = next((d for d in same.order_by("pk") if len(d.split_ratios) == 4), None)
    if existing is not None:
        return existing, False
    name = DATASET_NAME
    if Dataset.objects.filter(name=name).exists():
        name = f"{DATASET_NAME}-{content_hash[:8]}"
    if Dataset.objects.filter(name=name).exists():
        name = f"{DATASET_NAME}-{content_hash[:8]}-feedback"
    result = dataset_import(
        path=DATASET_FILE,
        name=name,
        spec=ImportSpec(
            split=DEMO_SPLIT,
            count_tokens=count_tokens,
            tokenizer=DEFAULT_BASE_MODEL if count_tokens else None,
        ),
        created_by=created_by,
    )
    if not result.imported:
        raise DemoError(DATASET_REFUSED.format(reason=result.refused))
    return result.dataset, True


# --- training ------------------------------------------------------------------------------


def _same_settings(run: FineTuneRun, config: TrainConfig) -> bool:
    return run.base_model.source == DEFAULT_BASE_MODEL and run_config(run) == config


def demo_run_find(*, dataset: Dataset, config: TrainConfig) -> FineTuneRun | None:
    """The newest run of the demo with these settings that succeeded and still has its adapter,
    else the newest one that stopped with a checkpoint to resume, else None."""
    runs = FineTuneRun.objects.filter(dataset=dataset).select_related("base_model")
    candidates = [r for r in runs.order_by("-pk") if _same_settings(r, config)]
    for run in candidates:
        adapter = Path(run.adapter_path) / "adapter_config.json" if run.adapter_path else None
        if run.status == RunStatus.SUCCEEDED and adapter and adapter.is_file():
            return run
    for run in candidates:
        if run.status in RESUMABLE and run.checkpoint_path:
            return run
    return None


def demo_run_create(
    *, dataset: Dataset, config: TrainConfig, created_by: AbstractUser | None = None
) -> FineTuneRun:
    """A queued run: a new one, or one continuing the last stopped demo run's checkpoint."""
    stopped = demo_run_find(dataset=dataset, config=config)
    if stopped is not None and stopped.status != RunStatus.SUCCEEDED:
        try:
            return run_create_resume(run=stopped, created_by=created_by)
        except RunError:
            pass  # its checkpoint is gone or unusable: train from the start
    spec = RunSpec(
        dataset=dataset,
        config=config,
        base_model=DEFAULT_BASE_MODEL,
        name=f"demo-{config.max_steps}-steps",
    )
    return run_create(spec=spec, created_by=created_by)


def demo_train(*, run: FineTuneRun, show_progress: bool = True) -> FineTuneRun:
    """Train in this process; the first Ctrl-C stops at the next step with a checkpoint (the
    next demo resumes it), a second one at once."""
    stop = StopRequest()
    with stop_on_signals(stop, CTRL_C_INTERRUPTS):
        run = run_execute(run=run, stop=stop, show_progress=show_progress)
    if run.status in RESUMABLE and run.checkpoint_path and run.status != RunStatus.FAILED:
        raise DemoError(RUN_STOPPED.format(id=run.pk, step=run.step, status=run.status))
    if run.status != RunStatus.SUCCEEDED:
        raise DemoError(RUN_ENDED.format(id=run.pk, status=run.status, error=run.error or "-"))
    return run


# --- evaluation ----------------------------------------------------------------------------


def demo_generate(*, run: FineTuneRun, log: Log) -> None:
    """Base and adapter answer the held-out prompts (only those still missing)."""
    outputs_generate(
        run=run,
        decoding=DEMO_DECODING,
        split=Split.TEST,
        batch_size=GENERATION_BATCH,
        on_system=lambda r: log(
            f"  {r.system}: {r.generated} generated, {r.kept} kept ({r.seconds} s)"
        ),
    )


def demo_score(*, run: FineTuneRun) -> int:
    """Score the run's outputs unless every one already has metrics; returns how many were
    scored now."""
    if not run_outputs(run=run).filter(metrics={}).exists():
        return 0
    return outputs_score(run=run).scored


# --- study ---------------------------------------------------------------------------------


def demo_study(
    *, run: FineTuneRun, expert: AbstractUser, manager: AbstractUser
) -> tuple[Study, bool]:
    """(the open demo study, created now): every held-out prompt, base vs adapter, rated by the
    demo expert, with the hand-written gold items mixed in."""
    study = Study.objects.filter(run=run, name__startswith=STUDY_NAME).order_by("pk").first()
    created = study is None
    if study is None:
        systems = [s for s in run_systems(run=run).values() if s is not None]
        study = study_create(
            name=free_study_name(),
            systems=systems,
            raters=[expert],
            overlap=1,
            criteria=STUDY_CRITERIA,
            guidelines=STUDY_GUIDELINES,
            gold=gold_load(GOLD_FILE),
            run=run,
            created_by=manager,
            seed=0,
        )
    if study.status != StudyStatus.OPEN:
        study = study_set_status(study=study, status=StudyStatus.OPEN)
    return study, created


def free_study_name(base: str = STUDY_NAME) -> str:
    """The study name, numbered when an earlier demo run already has a study by that name."""
    name, number = base, 1
    while Study.objects.filter(name=name).exists():
        number += 1
        name = f"{base} {number}"
    return name


@dataclass(frozen=True)
class SimulatedRater:
    """How a made-up expert judges: ``follows`` is the chance they see in a comparison what a
    careful rater sees (``_consensus``), and the share of gold items they get right;
    ``seconds`` their typical time on an item."""

    username: str
    follows: float
    seconds: float


@dataclass(frozen=True)
class SimulatedStudy:
    study: Study
    created: bool
    raters: int
    judgments: int
    final_calls: int


# Three careful raters, one noisier, and one who clicks through at a second an item (the gate
# leaves them out on both time and gold, and their competence sits far below the others').
SIMULATED_RATERS = (
    SimulatedRater("sim-rater-1", follows=0.9, seconds=24),
    SimulatedRater("sim-rater-2", follows=0.85, seconds=31),
    SimulatedRater("sim-rater-3", follows=0.85, seconds=18),
    SimulatedRater("sim-rater-4", follows=0.65, seconds=12),
    SimulatedRater("sim-rater-5", follows=0.3, seconds=1.2),
)
SIMULATED_REVIEWER = "sim-reviewer"
SIMULATED_STUDY_NAME = "Demo study (simulated raters)"
SIMULATED_OVERLAP = 4
SIMULATED_FINAL_CALLS = 4
SIMULATED_NOTICE = (
    "Simulated raters: the demo made up this study's 5 raters and its reviewer. They prefer the "
    "answer with the higher ROUGE-L more or less often, call ties and both bad now and then, "
    "and one clicks through; the numbers show what the analysis reads, not what experts think."
)
# What raters see in a comparison (``_consensus``).
TIE_RATE, TIE_CLOSE_RATE, CLOSE_ROUGE = 0.06, 0.3, 0.05
BOTH_BAD_RATE, BOTH_BAD_LOW_RATE, LOW_ROUGE = 0.04, 0.3, 0.25


def demo_simulated_study(*, run: FineTuneRun, manager: AbstractUser) -> SimulatedStudy:
    """A second study of the run, every judgment made up (seeded, so every demo makes the same
    ones) through the services a real rater's and reviewer's submits go through; created once
    per run, all or nothing. Its guidelines' first line says the raters are simulated."""
    study = (
        Study.objects.filter(run=run, name__startswith=SIMULATED_STUDY_NAME).order_by("pk").first()
    )
    if study is not None:
        return _simulated(study, created=False)
    with transaction.atomic():
        raters = {r.username: simulated_account(r.username) for r in SIMULATED_RATERS}
        reviewer = simulated_account(SIMULATED_REVIEWER, reviewer=True)
        study = study_create(
            name=free_study_name(SIMULATED_STUDY_NAME),
            systems=[s for s in run_systems(run=run).values() if s is not None],
            raters=list(raters.values()),
            overlap=SIMULATED_OVERLAP,
            criteria=STUDY_CRITERIA,
            guidelines=f"{SIMULATED_NOTICE}\n\n{STUDY_GUIDELINES}",
            gold=gold_load(GOLD_FILE),
            run=run,
            created_by=manager,
            seed=0,
        )
        study = study_set_status(study=study, status=StudyStatus.OPEN)
        rng = random.Random(study.seed)
        profiles = {raters[r.username].pk: r for r in SIMULATED_RATERS}
        assignments = Assignment.objects.filter(comparison__study=study).select_related(
            "comparison__output_a", "comparison__output_b", "rater"
        )
        # Raters work side by side: the judgments come in the order of their queues' positions.
        # Each rater gets the share ``follows`` of the gold items right, whatever the draws.
        gold = sorted(
            Comparison.objects.filter(study=study, is_gold=True).values_list("pk", flat=True)
        )
        right = {
            rater: set(rng.sample(gold, round(profile.follows * len(gold))))
            for rater, profile in profiles.items()
        }
        consensus: dict[int, str] = {}
        for assignment in assignments.order_by("position", "rater_id"):
            profile = profiles[assignment.rater_id]
            comparison = assignment.comparison
            if comparison.pk not in consensus:
                consensus[comparison.pk] = _consensus(comparison, rng)
            if comparison.is_gold:
                follows = comparison.pk in right[assignment.rater_id]
            else:
                follows = rng.random() < profile.follows
            verdict = _simulated_verdict(consensus[comparison.pk], follows, rng)
            judgment_submit(
                assignment=assignment,
                rater=assignment.rater,
                choice=blinding.blind_choice(verdict, left_is_a=assignment.left_is_a),
                time_on_task_ms=round(profile.seconds * rng.lognormvariate(0, 0.4) * 1000),
            )
        _simulated_final_calls(study, reviewer)
    return _simulated(study, created=True)


def _simulated(study: Study, *, created: bool) -> SimulatedStudy:
    return SimulatedStudy(
        study=study,
        created=created,
        raters=study.raters.count(),
        judgments=Judgment.objects.filter(assignment__comparison__study=study).count(),
        final_calls=Comparison.objects.filter(study=study, adjudication__isnull=False).count(),
    )


def simulated_account(username: str, *, reviewer: bool = False) -> AbstractUser:
    """A simulated rater's (or reviewer's) account: nobody can log in to it."""
    user = get_user_model().objects.filter(username=username).first()
    return user or user_invite(username=username, reviewer=reviewer)


def _rouge(output: Output) -> float:
    value = (output.metrics or {}).get("rougeL")
    return float(value) if isinstance(value, int | float) else 0.0


def _consensus(comparison: Comparison, rng: random.Random) -> str:
    """What a careful rater would see in a comparison, in storage order ("a": output_a is
    better): the answer with the higher ROUGE-L, a tie now and then (more often when the two
    score alike), both bad now and then (more often when neither is close to the reference)."""
    if comparison.is_gold:
        return comparison.gold_answer
    rouge_a, rouge_b = _rouge(comparison.output_a), _rouge(comparison.output_b)
    both_bad = BOTH_BAD_RATE + BOTH_BAD_LOW_RATE * (max(rouge_a, rouge_b) < LOW_ROUGE)
    tie = TIE_RATE + TIE_CLOSE_RATE * (abs(rouge_a - rouge_b) < CLOSE_ROUGE)
    draw = rng.random()
    if draw < both_bad:
        return Verdict.BOTH_BAD
    if draw < both_bad + tie:
        return Verdict.TIE
    return Verdict.A if rouge_a >= rouge_b else Verdict.B


def _simulated_verdict(consensus: str, follows: bool, rng: random.Random) -> str:
    """The consensus if the rater ``follows`` it this time, else another verdict."""
    if follows:
        return consensus
    return rng.choice([v for v in Verdict.values if v != consensus])


def _simulated_final_calls(study: Study, reviewer: AbstractUser) -> None:
    """The reviewer settles the first few comparisons where the raters split, siding with the
    answer with the higher ROUGE-L, in their own blinded frame as on the review page."""
    split = [d for d in disputed_comparisons(study=study, reviewer=reviewer) if SPLIT in d.reasons]
    for disputed in split[:SIMULATED_FINAL_CALLS]:
        comparison = Comparison.objects.select_related("output_a", "output_b").get(
            pk=disputed.comparison
        )
        a_better = _rouge(comparison.output_a) >= _rouge(comparison.output_b)
        verdict = Verdict.A if a_better else Verdict.B
        adjudication_submit(
            comparison=comparison,
            reviewer=reviewer,
            choice=blinding.blind_choice(verdict, left_is_a=disputed.left_is_a),
            left_is_a=disputed.left_is_a,
            note="Simulated: the answer with the higher ROUGE-L.",
        )


# --- serving -------------------------------------------------------------------------------


def demo_server(port: int) -> list[str]:
    """The web server as the demo runs it: Django's development server, which with --insecure
    serves the static files itself when DEBUG is off (enough for one person on 127.0.0.1)."""
    return _manage("runserver", f"127.0.0.1:{port}", "--noreload", "--insecure")


def demo_server_wait(port: int, *, seconds: int = 60) -> None:
    """Return once the web server on 127.0.0.1 accepts connections (its checks take seconds)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise DemoError(SERVER_SILENT.format(port=port, seconds=seconds)) from None
            time.sleep(0.2)


def demo_worker() -> list[str]:
    return _manage("db_worker", "--queue-name", "default,gpu", "--no-reload")


def demo_server_environment() -> dict[str, str]:
    """The server's and the worker's environment: DEBUG off, so errors get the site's own
    pages and no URL list or traceback, on plain http on 127.0.0.1 (the HTTPS-only cookies,
    redirect and HSTS of a real deployment are off) with this installation's secret key."""
    return {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": settings.SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_HSTS_SECONDS": "0",
        # Lines reach the log as they happen, not when a buffer fills.
        "PYTHONUNBUFFERED": "1",
    }


def _manage(*args: str) -> list[str]:
    return [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *args]


def adapter_examples(*, run: FineTuneRun, count: int = 2) -> list[tuple[str, str, str]]:
    """(question, base answer, adapter answer) for the first held-out prompts: what the demo
    prints so the change in behaviour shows on the terminal too."""
    systems = run_systems(run=run)
    if systems["base"] is None or systems["adapter"] is None:
        return []
    adapter = {o.prompt_id: o.text for o in Output.objects.filter(system=systems["adapter"])}
    found = []
    for output in Output.objects.filter(system=systems["base"]).select_related("prompt"):
        if output.prompt_id in adapter:
            question = output.prompt.messages[-1]["content"]
            found.append((question, output.text, adapter[output.prompt_id]))
        if len(found) == count:
            break
    return found
