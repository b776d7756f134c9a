"""Giving out the judgments of an adaptive study, one draw at a time.

The statistics are in ``evalhub.analysis.allocation``; this module keeps the database side:
a rater who asks for work gets the next draw that lands on them, made under the study's row
lock so that draws are numbered in order and each is made from the judgments before it.

Blinding holds as in a uniform study: a draw makes an ordinary assignment with its own
token, its side chosen so that each rater sees each system on the left as often as on the
right (never more than one apart); no rater gets a comparison twice (a draw that lands on a
cell already given out reuses it); gold items keep the positions planned at creation, spread
over the rater's share of the study as in a uniform study.
"""

import random

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Min

from evalhub import blinding
from evalhub.analysis import allocation
from evalhub.analysis.sequential import pair_outcomes
from evalhub.models import Allocation, Assignment, Comparison, Draw, Study, StudyStatus
from evalhub.selectors.studies import allocation_budget, pair_ratings, study_monitored_pair

# A request makes at most this many draws (the others wait for their raters); with R raters a
# draw lands on the asking one with probability 1/R, so 200 fail to only with (1 − 1/R)^200.
MAX_DRAWS_PER_REQUEST = 200


def _first_free(positions: set[int]) -> int:
    position = 0
    while position in positions:
        position += 1
    return position


def _left_output(comparison: Comparison, rater_id: int, rng: random.Random):
    """The side that keeps this rater's left/right counts per system within one."""
    lefts = {comparison.output_a.system_id: 0, comparison.output_b.system_id: 0}
    for system_id in Assignment.objects.filter(
        comparison__study_id=comparison.study_id, comparison__is_gold=False, rater_id=rater_id
    ).values_list("left_output__system_id", flat=True):
        if system_id in lefts:
            lefts[system_id] += 1
    a, b = comparison.output_a, comparison.output_b
    if lefts[a.system_id] != lefts[b.system_id]:
        return a if lefts[a.system_id] < lefts[b.system_id] else b
    return a if rng.random() < 0.5 else b


def allocation_next(*, study: Study, rater: AbstractBaseUser) -> Assignment | None:
    """Make sure ``rater`` has their next item in an open adaptive study: when nothing is due
    in their queue, draw until a draw lands on them (the draws that land on other raters join
    those raters' queues). Returns the new assignment, or None when one was due already, the
    study is not open, the rater is not on its panel, or the budget is spent."""
    if study.allocation != Allocation.ADAPTIVE:  # a study's allocation never changes
        return None
    return _draw_for(study, rater)


@transaction.atomic
def _draw_for(study: Study, rater: AbstractBaseUser) -> Assignment | None:
    study = Study.objects.select_for_update().get(pk=study.pk)
    if study.status != StudyStatus.OPEN:
        return None
    panel = sorted(study.raters.filter(is_active=True).values_list("pk", flat=True))
    if rater.pk not in panel:
        return None
    queue = Assignment.objects.filter(comparison__study=study, rater=rater)
    positions = set(queue.values_list("position", flat=True))
    due = queue.filter(judgment__isnull=True).aggregate(first=Min("position"))["first"]
    if due is not None and due <= _first_free(positions):
        return None

    pair = study_monitored_pair(study=study)
    comparisons = {
        c.pk: c
        for c in Comparison.objects.filter(study=study, is_gold=False).select_related(
            "output_a", "output_b"
        )
    }
    predictions = {
        pk: c.prediction if c.prediction is not None else 0.5 for pk, c in comparisons.items()
    }
    judged = [
        (o.item, o.value)
        for o in pair_outcomes(pair_ratings(study=study), pair[0].name, pair[1].name)
    ]
    cells = {
        (a.comparison_id, a.rater_id): a
        for a in Assignment.objects.filter(comparison__study=study, comparison__is_gold=False)
    }
    spent = len(cells)
    budget = allocation_budget(study=study)
    number = study.draws.count()
    for _ in range(MAX_DRAWS_PER_REQUEST):
        rng = random.Random(f"{study.seed}:draw:{number}")
        drawn = allocation.draw(predictions, judged, panel, rng)
        cell = cells.get((drawn.item, drawn.rater))
        if cell is None:
            if spent >= budget:
                return None
            comparison = comparisons[drawn.item]
            taken = set(
                Assignment.objects.filter(
                    comparison__study=study, rater_id=drawn.rater
                ).values_list("position", flat=True)
            )
            cell = Assignment.objects.create(
                comparison=comparison,
                rater_id=drawn.rater,
                left_output=_left_output(comparison, drawn.rater, rng),
                position=_first_free(taken),
                token=blinding.new_token(),
            )
            cells[(drawn.item, drawn.rater)] = cell
            spent += 1
        Draw.objects.create(
            study=study,
            number=number,
            assignment=cell,
            weight=drawn.weight,
            prediction=drawn.prediction,
            centre=drawn.centre,
            low=drawn.low,
            high=drawn.high,
        )
        number += 1
        if drawn.rater == rater.pk and not hasattr(cell, "judgment"):
            return cell
    return None


def allocation_for_rater(*, rater: AbstractBaseUser) -> None:
    """Before listing a rater's work: their next item in every open adaptive study of theirs."""
    for study in rater.rated_studies.filter(
        allocation=Allocation.ADAPTIVE, status=StudyStatus.OPEN
    ):
        allocation_next(study=study, rater=rater)
