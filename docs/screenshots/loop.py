"""The improvement loop's rows for the screenshots, after the demo's run v1 and study exist.

The demo dataset is imported with a feedback split (0.7,0.1,0.1,0.1: the same 36 test prompts as
the demo's 0.8,0.1,0.1). On the 36 feedback prompts the base answers with the reference's
first line only and v1 with its first two lines; the demo expert judges them all and writes the
full reference answer as the better answer on every item they do not give to v1. A preference
set is built from that study by the real service. Run v2 (DPO from v1 on that set) is recorded
without training: a curve of the usual shape, reward accuracy rising to 0.75 on held-out pairs.
Its answers to the test prompts are the reference without the tip line. The expert judges the
three-system study (base, v1, v2) on the test prompts, and a model judge has verdicts in both
orders on it: it agrees with the expert's call on about four comparisons in five and flips with
the order on about one in eight.
"""

import random
from datetime import timedelta

SPLIT = (0.7, 0.1, 0.1, 0.1)
V2_STEPS = 12
V2_REWARD_ACCURACY = {4: 0.5, 8: 0.625, 12: 0.75}


def import_dataset(*, created_by):
    """The demo dataset with a feedback split; ``demo.demo_dataset`` then finds it by content."""
    from evalhub.services import demo
    from trainer.services.datasets import ImportSpec, dataset_import

    result = dataset_import(
        path=demo.DATASET_FILE,
        name=demo.DATASET_NAME,
        spec=ImportSpec(split=SPLIT),
        created_by=created_by,
    )
    if not result.imported:
        raise SystemExit(f"the demo dataset was refused: {result.refused}")
    return result.dataset


def build_loop(*, v1, users) -> dict[str, int]:
    """Feedback study, preference set, run v2 and the three-system study with a judge."""
    from evalhub.services.preferences import preference_set_build
    from evalhub.services.studies import study_create, study_set_status
    from trainer.models import Split

    from_reference = {
        "base": lambda ref: ref.splitlines()[0],
        "adapter": lambda ref: "\n".join(ref.splitlines()[:2]),
    }
    systems = store_outputs(v1, Split.FEEDBACK, from_reference)
    feedback = study_create(
        name="Feedback round",
        systems=list(systems.values()),
        raters=[users["expert"]],
        overlap=1,
        criteria=["correctness", "format"],
        run=v1,
        created_by=users["manager"],
        seed=0,
        split=Split.FEEDBACK,
    )
    study_set_status(study=feedback, status="open")
    rank = {systems["base"].pk: 0, systems["adapter"].pk: 1}
    judge_all(feedback, users["expert"], rank, correct=True)
    preference_set = preference_set_build(
        study=feedback, name="demo-prefs", created_by=users["manager"]
    )
    v2 = record_dpo_run(v1=v1, dataset=preference_set.dataset, manager=users["manager"])
    v2_answers = {"adapter": lambda ref: "\n".join(ref.splitlines()[:2])}
    v2_system = store_outputs(v2, Split.TEST, v2_answers, dataset=v1.dataset)["adapter"]
    three = study_create(
        name="Round two",
        systems=[systems["base"], systems["adapter"], v2_system],
        raters=[users["expert"]],
        overlap=1,
        criteria=["correctness", "format"],
        run=v2,
        created_by=users["manager"],
        seed=0,
    )
    study_set_status(study=three, status="open")
    calls = judge_all(three, users["expert"], {**rank, v2_system.pk: 2}, correct=False)
    record_judge(three, calls, users["manager"])
    return {
        "v2": v2.pk,
        "three": three.pk,
        "preference_set": preference_set.name,
        "version": preference_set.version,
    }


def store_outputs(run, split, answers, dataset=None) -> dict:
    """The run's systems' outputs on the prompts of ``split`` of ``dataset`` (the run's own by
    default), each text made from the prompt's reference."""
    from evalhub.selectors.outputs import evaluation_prompts
    from evalhub.services.outputs import outputs_store
    from evalhub.services.prompts import prompts_create_from_split
    from evalhub.services.systems import system_get_or_create
    from trainer.engine.generate import GeneratedText

    dataset = dataset or run.dataset
    prompts_create_from_split(dataset=dataset, split=split)
    prompts = list(evaluation_prompts(dataset=dataset, split=split))
    systems = {}
    for kind, make in answers.items():
        systems[kind] = system_get_or_create(run=run, kind=kind)
        items = [(p, GeneratedText(make(p.reference), 20, 900.0)) for p in prompts]
        outputs_store(system=systems[kind], items=items)
    return systems


def judge_all(study, expert, rank: dict[int, int], *, correct: bool) -> dict[int, str]:
    """The expert judges every item, mostly for the higher-ranked system; returns each
    comparison's call in storage terms (a = output_a better). With ``correct`` the expert
    writes the reference answer on every item where the higher-ranked system did not win."""
    from evalhub.models import Assignment
    from evalhub.services.judgments import judgment_submit

    rng = random.Random(1)
    calls = {}
    assignments = Assignment.objects.filter(comparison__study=study, rater=expert)
    for assignment in assignments.select_related(
        "comparison__output_a", "comparison__output_b", "comparison__prompt"
    ).order_by("position"):
        comparison = assignment.comparison
        a, b = comparison.output_a, comparison.output_b
        better = a if rank[a.system_id] > rank[b.system_id] else b
        good, poor = ("a", "b") if assignment.left_output_id == better.pk else ("b", "a")
        choice = rng.choices([good, "tie", "both_bad", poor], weights=[65, 12, 8, 15])[0]
        left_is_a = assignment.left_output_id == a.pk
        side = {"a": "a" if left_is_a else "b", "b": "b" if left_is_a else "a"}
        calls[comparison.pk] = side.get(choice, "tie")
        judgment_submit(
            assignment=assignment,
            rater=expert,
            choice=choice,
            criterion_scores={"correctness": {good: 5, poor: 3}, "format": {good: 5, poor: 2}},
            correction=comparison.prompt.reference if correct and choice != good else "",
            time_on_task_ms=rng.randint(9_000, 40_000),
        )
    return calls


def record_dpo_run(*, v1, dataset, manager):
    from django.utils import timezone

    from trainer.models import FineTuneRun, MetricKind, RunMetric, RunStatus, TrainMethod

    finished = timezone.now()
    v2 = FineTuneRun.objects.create(
        name="dpo-v2",
        dataset=dataset,
        base_model=v1.base_model,
        method=TrainMethod.DPO,
        from_run=v1,
        status=RunStatus.SUCCEEDED,
        hyperparameters={
            **v1.hyperparameters,
            "method": TrainMethod.DPO,
            "max_steps": V2_STEPS,
            "learning_rate": 5e-5,
            "beta": 0.1,
        },
        step=V2_STEPS,
        total_steps=V2_STEPS,
        epoch=3.0,
        best_val_loss=0.61,
        best_step=V2_STEPS,
        wall_seconds=96.0,
        started_at=finished - timedelta(seconds=96),
        finished_at=finished,
        trainable_params=v1.trainable_params,
        total_params=v1.total_params,
        peak_memory_bytes=v1.peak_memory_bytes,
        adapter_size_bytes=v1.adapter_size_bytes,
        adapter_path=v1.adapter_path.replace(f"run-{v1.pk}", "run-v2"),
        environment=v1.environment,
        created_by=manager,
    )
    for step in range(1, V2_STEPS + 1):
        RunMetric.objects.create(
            run=v2,
            kind=MetricKind.TRAIN,
            step=step,
            epoch=step / 4,
            loss=0.693 - 0.007 * step,
            learning_rate=5e-5,
            grad_norm=0.9,
            tokens_per_s=150.0,
            reward_accuracy=min(1.0, 0.45 + 0.04 * step),
            reward_margin=0.01 * step,
        )
    for step, accuracy in V2_REWARD_ACCURACY.items():
        RunMetric.objects.create(
            run=v2,
            kind=MetricKind.VALIDATION,
            step=step,
            epoch=step / 4,
            loss=0.693 - 0.007 * step,
            reward_accuracy=accuracy,
            reward_margin=0.008 * step,
        )
    return v2


def record_judge(study, calls: dict[int, str], manager) -> None:
    """A local judge's verdicts in both orders on every comparison the expert judged."""
    from django.utils import timezone

    from evalhub.models import JudgeRun, JudgeVerdict
    from evalhub.services.judging import judge_create

    judge = judge_create(name="smollm2-judge", created_by=manager)
    rng = random.Random(2)
    verdicts = 0
    for comparison, call in calls.items():
        agreed = call if rng.random() < 0.8 else rng.choice([c for c in "ab" if c != call])
        flipped = rng.random() < 0.125
        for order in ("ab", "ba"):
            choice = agreed
            if flipped and order == "ba":  # the answer shown first wins in both orders
                choice = "b" if agreed != "b" else "a"
            JudgeVerdict.objects.create(
                judge=judge,
                comparison_id=comparison,
                order=order,
                choice=choice,
                prompt_tokens=180,
                completion_tokens=1,
            )
            verdicts += 1
    now = timezone.now()
    JudgeRun.objects.create(
        judge=judge,
        study=study,
        status="succeeded",
        verdicts_done=verdicts,
        tokens_used=181 * verdicts,
        started_at=now - timedelta(seconds=240),
        finished_at=now,
    )
