"""One closed loop, built row by row: a dataset split train | feedback | test, an SFT run v1, a
feedback study of base vs v1, a preference set built from it, a DPO run v2 from v1 on that set,
and a test study of base vs v1 vs v2 with known judgments.

Test study judgments (one rater, ``dee``, the left answer always the first named system's):
- v2 vs base on 10 test prompts: v2 wins 7, loses 2, 1 tie  -> v2's win rate 7.5 / 10
- v2 vs v1 on the same 10 prompts: v2 wins 6, loses 4       -> 6 / 10
- v1 vs base on the same 10 prompts: v1 wins 5, loses 5
The judgments v2 lost carry comments ("lost i to base" / "lost i to v1").
"""

import secrets
from dataclasses import dataclass

from evalhub import models as ev
from tests.factories import (
    BaseModelFactory,
    DatasetFactory,
    ExampleFactory,
    ExpertFactory,
    FineTuneRunFactory,
    StudyFactory,
)
from trainer import models as tr

PROMPTS = 10
V2_VS_BASE = (7, 2, 1)  # wins, losses, ties
V2_VS_V1 = (6, 4, 0)
V1_VS_BASE = (5, 5, 0)


@dataclass
class Loop:
    dataset: tr.Dataset
    v1: tr.FineTuneRun
    v2: tr.FineTuneRun
    base: ev.System
    adapter_v1: ev.System
    adapter_v2: ev.System
    feedback_study: ev.Study
    preference_set: ev.PreferenceSet
    test_study: ev.Study
    feedback_prompts: list[ev.Prompt]
    test_prompts: list[ev.Prompt]


def _conversation(text: str, answer: str) -> list[dict]:
    return [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": text},
        {"role": "assistant", "content": answer},
    ]


def _prompts(dataset: tr.Dataset, split: str, count: int, start: int) -> list[ev.Prompt]:
    prompts = []
    for i in range(count):
        example = ExampleFactory(
            dataset=dataset,
            index=start + i,
            split=split,
            messages=_conversation(f"{split} question {i}", f"{split} answer {i}"),
        )
        prompts.append(
            ev.Prompt.objects.create(
                dataset=dataset,
                example=example,
                messages=example.messages[:-1],
                reference=example.messages[-1]["content"],
            )
        )
    return prompts


def _outputs(system: ev.System, prompts: list[ev.Prompt]) -> dict[int, ev.Output]:
    return {
        p.pk: ev.Output.objects.create(
            system=system, prompt=p, text=f"{system.name} on {p.pk}", metrics={"rougeL": 0.25}
        )
        for p in prompts
    }


def judge(study, rater, prompts, first, second, outcomes, comment: str = "") -> None:
    """``outcomes`` = (first wins, first losses, ties) over ``prompts`` in order; the first
    system's answer is shown on the left. Lost judgments carry ``comment`` with the index."""
    wins, losses, _ties = outcomes
    for i, prompt in enumerate(prompts):
        out_first = first.outputs.get(prompt=prompt)
        out_second = second.outputs.get(prompt=prompt)
        comparison = ev.Comparison.objects.create(
            study=study, prompt=prompt, output_a=out_second, output_b=out_first
        )
        assignment = ev.Assignment.objects.create(
            comparison=comparison,
            rater=rater,
            left_output=out_first,
            position=comparison.pk,
            token=secrets.token_urlsafe(24),
        )
        choice = "a" if i < wins else "b" if i < wins + losses else "tie"
        lost = wins <= i < wins + losses
        ev.Judgment.objects.create(
            assignment=assignment, choice=choice, comment=comment.format(i=i) if lost else ""
        )


def build_loop() -> Loop:
    dataset = DatasetFactory(name="support")
    model = BaseModelFactory()
    _prompts(dataset, tr.Split.TRAIN, 6, 0)
    feedback = _prompts(dataset, tr.Split.FEEDBACK, 4, 100)
    test = _prompts(dataset, tr.Split.TEST, PROMPTS, 200)
    v1 = FineTuneRunFactory(
        name="sft-v1", dataset=dataset, base_model=model, best_val_loss=1.2345, status="succeeded"
    )
    base = ev.System.objects.create(name="base:smollm", kind="base", base_model=model, run=v1)
    adapter_v1 = ev.System.objects.create(name="adapter:v1", kind="adapter", run=v1)
    for system in (base, adapter_v1):
        _outputs(system, feedback + test)

    rater = ExpertFactory(username="dee")
    feedback_study = StudyFactory(name="feedback round", run=v1)
    feedback_study.systems.set([base, adapter_v1])
    judge(feedback_study, rater, feedback, adapter_v1, base, (3, 1, 0))

    pairs = tr.Dataset.objects.create(
        name="support-prefs-v1", kind="preferences", format="pairs", content_hash="cd" * 32
    )
    for i, prompt in enumerate(feedback):
        tr.Example.objects.create(
            dataset=pairs,
            index=i,
            source_line=i + 1,
            messages=[*prompt.messages, {"role": "assistant", "content": f"chosen {i}"}],
            rejected=f"rejected {i}",
            split="validation" if i == 0 else "train",
            content_hash=f"{i:064d}",
        )
    preference_set = ev.PreferenceSet.objects.create(
        name="support-prefs", version=1, study=feedback_study, dataset=pairs, pair_count=4
    )
    v2 = FineTuneRunFactory(
        name="dpo-v2",
        dataset=pairs,
        base_model=model,
        method="dpo",
        from_run=v1,
        status="succeeded",
        best_step=20,
    )
    for step, accuracy in ((10, 0.55), (20, 0.75), (30, 0.7)):
        tr.RunMetric.objects.create(
            run=v2, kind="validation", step=step, loss=0.6, reward_accuracy=accuracy
        )
    adapter_v2 = ev.System.objects.create(name="adapter:v2", kind="adapter", run=v2)
    _outputs(adapter_v2, feedback + test)

    test_study = StudyFactory(name="test round", run=v2)
    test_study.systems.set([base, adapter_v1, adapter_v2])
    judge(test_study, rater, test, adapter_v2, base, V2_VS_BASE, "lost {i} to base")
    judge(test_study, rater, test, adapter_v2, adapter_v1, V2_VS_V1, "lost {i} to v1")
    judge(test_study, rater, test, adapter_v1, base, V1_VS_BASE)
    return Loop(
        dataset=dataset,
        v1=v1,
        v2=v2,
        base=base,
        adapter_v1=adapter_v1,
        adapter_v2=adapter_v2,
        feedback_study=feedback_study,
        preference_set=preference_set,
        test_study=test_study,
        feedback_prompts=feedback,
        test_prompts=test,
    )
