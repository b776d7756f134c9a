"""A study on feedback prompts with judgments given as "which output the rater preferred", so
tests know the chosen answer without going through the code that unblinds it."""

from evalhub.models import Assignment, Comparison, Judgment, StudyStatus
from evalhub.services.judgments import judgment_submit
from evalhub.services.studies import study_create, study_set_status
from tests.evalhub.rating_fixtures import run_with_outputs
from tests.factories import ExpertFactory


def feedback_study(prompts: int = 3, raters: int = 3, split: str = "feedback", **kwargs):
    """An open study of a run's base and adapter on ``prompts`` prompts of ``split``, every
    comparison given to every one of ``raters`` experts; returns (study, experts, outputs)."""
    outputs = run_with_outputs(prompts, split=split)
    experts = [ExpertFactory() for _ in range(raters)]
    study = study_create(
        name=kwargs.pop("name", "Round two"),
        systems=outputs.systems,
        raters=experts,
        overlap=raters,
        run=outputs.run,
        seed=5,
        split=split,
        **kwargs,
    )
    return study_set_status(study=study, status=StudyStatus.OPEN), experts, outputs


def judge(comparison: Comparison, rater, prefers: str, **kwargs) -> Judgment:
    """``rater`` judges ``comparison``: ``prefers`` is "adapter" or "base" (the system whose
    output they find better), or a choice that names no side: "tie", "both_bad", "skip"."""
    assignment = Assignment.objects.get(comparison=comparison, rater=rater)
    if prefers in ("adapter", "base"):
        better = next(
            o for o in (comparison.output_a, comparison.output_b) if o.system.kind == prefers
        )
        choice = "a" if assignment.left_output_id == better.pk else "b"
    else:
        choice = prefers
    if choice == "skip":
        kwargs.setdefault("flagged", True)
        kwargs.setdefault("flag_reason", "cannot judge")
    correction = kwargs.pop("correction", "")
    judgment = judgment_submit(assignment=assignment, rater=rater, choice=choice, **kwargs)
    if correction:
        Judgment.objects.filter(pk=judgment.pk).update(correction=correction)
    return judgment


def answer_of(comparison: Comparison, kind: str) -> str:
    return next(o.text for o in (comparison.output_a, comparison.output_b) if o.system.kind == kind)
