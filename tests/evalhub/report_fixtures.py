"""A small study with known numbers for the report, page and command tests.

Base is stored as output a and the adapter as output b, and sides alternate per rater, so every
number below only comes out right if judgments are unblinded through ``left_output``.

12 items × 2 raters (ann, bob) = 24 judgments. As the raters saw them:
- items 0–7: both raters prefer the adapter → 16 adapter wins
- items 8–10: both prefer base → 6 base wins
- item 11: ann says tie, bob says both bad
Adapter win rate = (16 + ½·2) / 24 = 17/24.
"""

import secrets

from evalhub import models as ev
from tests.factories import (
    BaseModelFactory,
    DatasetFactory,
    ExpertFactory,
    FineTuneRunFactory,
    PromptFactory,
    StudyFactory,
)
from trainer.models import RunMetric

HOSTILE_OUTPUT = '<script>alert("x")</script><img src=x onerror="alert(1)">'
HOSTILE_SYSTEM = 'base <b onmouseover="alert(2)">'
FORMULA_COMMENT = '=HYPERLINK("http://evil.example","click")'
ADAPTER_WIN_RATE = 17 / 24


def build_study(name: str = "report-study") -> ev.Study:
    dataset = DatasetFactory(name="support-tickets", content_hash="ab" * 32)
    base_model = BaseModelFactory()
    run = FineTuneRunFactory(
        dataset=dataset,
        base_model=base_model,
        name="qlora-r16",
        plan={"total_steps": 30, "start_step": 0},
    )
    for step, loss in ((10, 2.0), (20, 1.5), (30, 1.2)):
        RunMetric.objects.create(run=run, kind="train", step=step, loss=loss)
    RunMetric.objects.create(run=run, kind="validation", step=30, loss=1.4)
    base = ev.System.objects.create(name=HOSTILE_SYSTEM, kind="base", base_model=base_model)
    adapter = ev.System.objects.create(name="adapter-r16", kind="adapter", run=run)
    study = StudyFactory(name=name, run=run, criteria=["correctness", "=tone"], seed=3)
    study.systems.set([base, adapter])
    ann, bob = ExpertFactory(username="ann"), ExpertFactory(username="@bob")
    for item in range(12):
        prompt = PromptFactory(
            dataset=dataset, messages=[{"role": "user", "content": f"question {item} <i>x</i>"}]
        )
        text = HOSTILE_OUTPUT if item == 0 else f"base answer {item}"
        out_base = ev.Output.objects.create(
            system=base,
            prompt=prompt,
            text=text,
            token_count=10,
            metrics={"rouge1": 0.1 * (item % 5), "bertscore_f1": 0.8},
            metrics_encoder="all-MiniLM-L6-v2",
        )
        out_adapter = ev.Output.objects.create(
            system=adapter,
            prompt=prompt,
            text=f"adapter answer {item}, longer",
            token_count=30,
            metrics={"rouge1": 0.2, "bertscore_f1": 0.85},
            metrics_encoder="all-MiniLM-L6-v2",
        )
        comparison = ev.Comparison.objects.create(
            study=study, prompt=prompt, output_a=out_base, output_b=out_adapter
        )
        for k, rater in enumerate((ann, bob)):
            adapter_left = (item + k) % 2 == 0
            left = out_adapter if adapter_left else out_base
            if item < 8:
                choice = "a" if adapter_left else "b"
            elif item < 11:
                choice = "b" if adapter_left else "a"
            else:
                choice = "tie" if rater is ann else "both_bad"
            # scores as displayed: the adapter always 4, base always 2 on correctness
            shown = {"a": 4, "b": 2} if adapter_left else {"a": 2, "b": 4}
            assignment = ev.Assignment.objects.create(
                comparison=comparison,
                rater=rater,
                left_output=left,
                position=item,
                token=secrets.token_urlsafe(24),
            )
            ev.Judgment.objects.create(
                assignment=assignment,
                choice=choice,
                criterion_scores={"correctness": shown},
                time_on_task_ms=1000 * (item + 1),
                comment=FORMULA_COMMENT if item == 1 else "",
                flagged=item == 2,
                flag_reason="-1 bad prompt" if item == 2 else "",
            )
    return study


def build_three_system_study() -> ev.Study:
    """adapter, base and reference answers; 12 items per pair, one rater each.
    adapter beats base 9–3, reference beats adapter 8–4, reference beats base 10–2."""
    dataset = DatasetFactory()
    base_model = BaseModelFactory()
    run = FineTuneRunFactory(dataset=dataset, base_model=base_model)
    systems = {
        "adapter": ev.System.objects.create(name="adapter", kind="adapter", run=run),
        "base": ev.System.objects.create(name="base", kind="base", base_model=base_model),
        "reference": ev.System.objects.create(name="reference", kind="reference"),
    }
    study = StudyFactory(name="three-way", run=run)
    study.systems.set(systems.values())
    rater = ExpertFactory(username="cy")
    plan = (("adapter", "base", 9), ("reference", "adapter", 8), ("reference", "base", 10))
    for x, y, x_wins in plan:
        for item in range(12):
            prompt = PromptFactory(dataset=dataset)
            out_x = ev.Output.objects.create(system=systems[x], prompt=prompt, text=f"{x} {item}")
            out_y = ev.Output.objects.create(system=systems[y], prompt=prompt, text=f"{y} {item}")
            comparison = ev.Comparison.objects.create(
                study=study, prompt=prompt, output_a=out_x, output_b=out_y
            )
            assignment = ev.Assignment.objects.create(
                comparison=comparison,
                rater=rater,
                left_output=out_y,  # x is shown on the right: "b" means x won
                position=item,
                token=secrets.token_urlsafe(24),
            )
            ev.Judgment.objects.create(assignment=assignment, choice="b" if item < x_wins else "a")
    return study
