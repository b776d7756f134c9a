"""The demo's second round: what an expert said about adapter v1 trains v2, which is judged
again beside base and v1.

1. Base and v1 answer the feedback prompts; a feedback study of the two is rated by the
   simulated expert (``evalhub.services.demo_expert``: a rule, named as such on every page),
   who writes the right answer out where the answer it prefers has the figure wrong.
2. A preference set is built from that study (pairs, corrections over the answers shown).
3. A DPO run starts from v1's adapter, with v1 as its reference.
4. v2 answers the test prompts; a study of base, v1 and v2 on them is rated by the same rule.

Every step reuses what an earlier demo left, as the first round's steps do.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.contrib.auth.models import AbstractUser
from django.db import transaction

from evalhub import blinding
from evalhub.analysis.base import Interval
from evalhub.analysis.winrate import pair_summary
from evalhub.models import (
    Assignment,
    JudgeRun,
    JudgeVerdict,
    Output,
    PreferenceSet,
    Study,
    StudyStatus,
    System,
)
from evalhub.selectors.lineage import lineage_systems
from evalhub.selectors.outputs import run_systems
from evalhub.selectors.studies import pair_ratings
from evalhub.services import demo
from evalhub.services.demo_expert import expert_call, figure_right
from evalhub.services.judging import (
    DEFAULT_JUDGE,
    judge_named,
    judge_run_create,
    judge_run_enqueue,
    judge_run_execute,
)
from evalhub.services.judgments import judgment_submit
from evalhub.services.outputs import outputs_generate
from evalhub.services.preferences import preference_set_build
from evalhub.services.studies import study_create, study_set_status
from trainer.engine.config import TrainConfig
from trainer.engine.model_store import DEFAULT_BASE_MODEL
from trainer.models import FineTuneRun, RunStatus, Split, TrainMethod
from trainer.selectors.runs import evaluation_dataset
from trainer.services.runs import (
    RESUMABLE,
    RunError,
    RunSpec,
    run_config,
    run_create,
    run_create_resume,
)

SIMULATED_EXPERT = "sim-expert"
FEEDBACK_STUDY_NAME = "Demo feedback study (simulated expert)"
ROUND_STUDY_NAME = "Demo round: base, v1 and v2 (simulated expert)"
PREFERENCE_SET_NAME = "demo-feedback"
NOTICE = (
    "Simulated expert: a rule made every judgment of this study, not a person. It prefers the "
    "answer whose **Answer:** figure is right, then the one in the house format, and where the "
    "answer it prefers has the figure wrong it writes the reference answer out as its correction."
)
# DPO on the preference set, from v1: a few dozen steps of four pairs, a learning rate for LoRA
# DPO on so small a model (see benchmarks/results/demo.md for what it gives).
DPO_TRAINING = {
    "method": TrainMethod.DPO,
    "batch_size": 4,
    "eval_every": 8,
    "patience": 0,
    "max_seq_len": 256,
    "warmup_ratio": 0.1,
}
DPO_STEPS = 8
DPO_LEARNING_RATE = 5e-5


@dataclass(frozen=True)
class Accuracy:
    """How many of a system's answers to the test prompts have the right figure."""

    system: str
    right: int
    total: int


@dataclass(frozen=True)
class RoundResult:
    feedback_study: Study
    preference_set: PreferenceSet
    v2: FineTuneRun
    round_study: Study
    accuracy: list[Accuracy]
    v2_win_rate: float | None
    v2_interval: Interval | None
    v2_judgments: int


def demo_dpo_config(steps: int = DPO_STEPS) -> TrainConfig:
    return TrainConfig(max_steps=steps, learning_rate=DPO_LEARNING_RATE, **DPO_TRAINING)


def simulated_expert() -> AbstractUser:
    return demo.simulated_account(SIMULATED_EXPERT)


# --- the model judge ----------------------------------------------------------------------


def demo_judge(*, study: Study, queue: bool) -> JudgeRun | None:
    """The packaged SmolLM2-135M as a local judge of the simulated raters' study, both orders
    of every comparison, so the report's calibration section has real numbers (a 135M judge is
    weak, and the section says so by its own figures). With ``queue`` the run goes to the
    worker, as the study page's button sends it (the demo's worker answers it while the site
    is up); otherwise it runs here. None when every verdict is there already."""
    judge = judge_named(name=DEFAULT_JUDGE)
    wanted = 2 * study.comparisons.filter(is_gold=False).count()
    if JudgeVerdict.objects.filter(judge=judge, comparison__study=study).count() >= wanted:
        return None
    if queue:
        return judge_run_enqueue(judge=judge, study=study)
    return judge_run_execute(run=judge_run_create(judge=judge, study=study))


# --- 1. the feedback study ----------------------------------------------------------------


def demo_feedback_study(*, run: FineTuneRun, manager: AbstractUser, log: demo.Log) -> Study:
    """Base and v1 on the feedback prompts, rated by the simulated expert (once per run)."""
    outputs_generate(
        run=run,
        decoding=demo.DEMO_DECODING,
        split=Split.FEEDBACK,
        batch_size=demo.GENERATION_BATCH,
        on_system=lambda r: log(f"  {r.system}: {r.generated} generated, {r.kept} kept"),
    )
    systems = [s for s in run_systems(run=run).values() if s is not None]
    return _rated_study(
        run=run, systems=systems, split=Split.FEEDBACK, name=FEEDBACK_STUDY_NAME, manager=manager
    )


def _rated_study(
    *, run: FineTuneRun, systems: list[System], split: str, name: str, manager: AbstractUser
) -> Study:
    study = Study.objects.filter(run=run, name__startswith=name).order_by("pk").first()
    if study is not None:
        return study
    with transaction.atomic():
        expert = simulated_expert()
        study = study_create(
            name=demo.free_study_name(name),
            systems=systems,
            raters=[expert],
            overlap=1,
            criteria=demo.STUDY_CRITERIA,
            guidelines=f"{NOTICE}\n\n{demo.STUDY_GUIDELINES}",
            run=run,
            split=split,
            created_by=manager,
            seed=0,
        )
        study = study_set_status(study=study, status=StudyStatus.OPEN)
        _rate(study, expert)
    return study


def _rate(study: Study, expert: AbstractUser) -> None:
    """Every assignment of the study judged by the rule, through the rating service, in the
    rater's blinded frame; the seeded times are a careful reader's."""
    rng = random.Random(study.seed)
    assignments = (
        Assignment.objects.filter(comparison__study=study, rater=expert)
        .select_related("comparison__output_a", "comparison__output_b", "comparison__prompt")
        .order_by("position")
    )
    for assignment in assignments:
        comparison = assignment.comparison
        call = expert_call(
            comparison.output_a.text,
            comparison.output_b.text,
            reference=comparison.prompt.reference,
        )
        judgment_submit(
            assignment=assignment,
            rater=expert,
            choice=blinding.blind_choice(call.verdict, left_is_a=assignment.left_is_a),
            correction=call.correction,
            time_on_task_ms=round(25_000 * rng.lognormvariate(0, 0.3)),
        )


# --- 2. the preference set ----------------------------------------------------------------


def demo_preference_set(*, study: Study, manager: AbstractUser) -> PreferenceSet:
    """The set built from the feedback study: the latest one built from it, else a new one."""
    built = PreferenceSet.objects.filter(study=study).order_by("-version").first()
    return built or preference_set_build(study=study, name=PREFERENCE_SET_NAME, created_by=manager)


# --- 3. DPO from v1 -----------------------------------------------------------------------


def demo_dpo_find(*, v1: FineTuneRun, preference_set: PreferenceSet, config: TrainConfig):
    """The newest DPO run from v1 on this set with these settings that succeeded, else one
    stopped with a checkpoint, else None."""
    runs = FineTuneRun.objects.filter(
        from_run=v1, dataset=preference_set.dataset, method=TrainMethod.DPO
    ).select_related("base_model")
    same = [
        r
        for r in runs.order_by("-pk")
        if r.base_model.source == DEFAULT_BASE_MODEL and run_config(r) == config
    ]
    return next((r for r in same if r.status == RunStatus.SUCCEEDED and r.adapter_path), None) or (
        next((r for r in same if r.status in RESUMABLE and r.checkpoint_path), None)
    )


def demo_dpo_create(
    *, v1: FineTuneRun, preference_set: PreferenceSet, config: TrainConfig, manager: AbstractUser
) -> FineTuneRun:
    """A queued DPO run from v1: a new one, or one continuing a stopped one's checkpoint."""
    stopped = demo_dpo_find(v1=v1, preference_set=preference_set, config=config)
    if stopped is not None and stopped.status != RunStatus.SUCCEEDED:
        try:
            return run_create_resume(run=stopped, created_by=manager)
        except RunError:
            pass  # its checkpoint is gone or unusable: train from the start
    spec = RunSpec(
        dataset=preference_set.dataset,
        config=config,
        base_model=DEFAULT_BASE_MODEL,
        name=f"demo-dpo-{config.max_steps}-steps",
        from_run=v1,
    )
    return run_create(spec=spec, created_by=manager)


# --- 4. the round study -------------------------------------------------------------------


def demo_round_study(*, v2: FineTuneRun, manager: AbstractUser, log: demo.Log) -> Study:
    """v2 answers the test prompts; base, v1 and v2 are compared on them by the rule."""
    outputs_generate(
        run=v2,
        decoding=demo.DEMO_DECODING,
        split=Split.TEST,
        systems=("adapter",),
        batch_size=demo.GENERATION_BATCH,
        on_system=lambda r: log(f"  {r.system}: {r.generated} generated, {r.kept} kept"),
    )
    return _rated_study(
        run=v2,
        systems=lineage_systems(run=v2),
        split=Split.TEST,
        name=ROUND_STUDY_NAME,
        manager=manager,
    )


def lineage_dataset(result: RoundResult) -> str:
    """The dataset whose lineage page shows the round."""
    return evaluation_dataset(run=result.v2).name


def figure_accuracy(*, systems: list[System]) -> list[Accuracy]:
    """Each system's share of test answers with the right figure."""
    found = []
    for system in systems:
        outputs = Output.objects.filter(system=system, prompt__example__split=Split.TEST)
        outputs = outputs.select_related("prompt")
        right = sum(figure_right(o.text, o.prompt.reference) for o in outputs)
        found.append(Accuracy(system.name, right, len(outputs)))
    return found


def round_result(
    *, feedback_study: Study, preference_set: PreferenceSet, v2: FineTuneRun, round_study: Study
) -> RoundResult:
    systems = lineage_systems(run=v2)
    v1, latest = systems[-2], systems[-1]
    summary = pair_summary(pair_ratings(study=round_study), latest.name, v1.name)
    interval = summary.wilson if isinstance(summary.wilson, Interval) else None
    return RoundResult(
        feedback_study=feedback_study,
        preference_set=preference_set,
        v2=v2,
        round_study=round_study,
        accuracy=figure_accuracy(systems=systems),
        v2_win_rate=summary.win_rate,
        v2_interval=interval,
        v2_judgments=summary.n,
    )
