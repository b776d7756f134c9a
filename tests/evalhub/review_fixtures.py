"""A study with something to settle: one comparison where the raters split, one where they
agree, one where a rater flagged and skipped, and one nobody judged yet."""

from dataclasses import dataclass

from django.conf import settings

from evalhub import blinding
from evalhub.models import Assignment, Comparison, Judgment, Study
from evalhub.services.judgments import judgment_submit
from tests.evalhub.rating_fixtures import RunOutputs, open_study


@dataclass
class Disputes:
    study: Study
    raters: list
    outputs: RunOutputs
    split: Comparison
    agreed: Comparison
    flagged: Comparison
    unjudged: Comparison


def judge(comparison: Comparison, rater, verdict: str, **more) -> Assignment:
    """``rater`` judges ``comparison``: ``verdict`` in storage order (a = output_a better),
    translated into the side that rater saw on the left."""
    assignment = Assignment.objects.get(comparison=comparison, rater=rater)
    choice = blinding.blind_choice(verdict, left_is_a=assignment.left_is_a)
    judgment_submit(assignment=assignment, rater=rater, choice=choice, **more)
    return assignment


def raters_opposite_to(world: Disputes, reviewer) -> None:
    """Show the split comparison to both raters with the reviewer's A on their right, and judge
    it again as before: each rater's stored choice is then the opposite of what the reviewer
    must read, so a page that forgot to translate shows the wrong one."""
    split = world.split
    _, left_is_a = blinding.review_frame(
        key=settings.SECRET_KEY.encode(), comparison=split.pk, reviewer=reviewer.pk
    )
    rater_left = split.output_b if left_is_a else split.output_a
    comments = dict(
        Judgment.objects.filter(assignment__comparison=split).values_list(
            "assignment__rater_id", "comment"
        )
    )
    Assignment.objects.filter(comparison=split).update(left_output=rater_left)
    for rater, verdict in zip(world.raters, ("a", "b"), strict=True):
        judge(split, rater, verdict, comment=comments[rater.pk])


def disputed_study(**kwargs) -> Disputes:
    study, raters, outputs = open_study(prompts=4, raters=2, overlap=2, **kwargs)
    split, agreed, flagged, unjudged = study.comparisons.order_by("id")
    first, second = raters
    judge(split, first, "a", comment="clearer steps")
    judge(split, second, "b", comment="the other one is wrong")
    judge(agreed, first, "a")
    judge(agreed, second, "a")
    judge(flagged, first, "tie")
    judge(flagged, second, "skip", flagged=True, flag_reason="prompt cut off")
    return Disputes(study, raters, outputs, split, agreed, flagged, unjudged)
