"""Writing studies: creation (comparisons, gold items, blinded assignments), status, raters.

Who rates what and on which side comes from ``evalhub.blinding``; this module only feeds it
database keys and stores the plan.
"""

import dataclasses
import itertools
import math
import random
import secrets
from collections.abc import Iterable, Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Q

from evalhub import blinding
from evalhub.analysis.rater_quality import DEFAULT_MIN_GOLD_ACCURACY, DEFAULT_MIN_MEDIAN_SECONDS
from evalhub.analysis.sequential import DEFAULT_MARGIN, UNDECIDED, Sequential
from evalhub.models import (
    GOLD_KINDS,
    Allocation,
    Assignment,
    Comparison,
    Judge,
    Output,
    Prompt,
    Study,
    StudyStatus,
    System,
)
from evalhub.selectors.judges import judge_signal_name
from evalhub.selectors.studies import (
    SIGNAL_METRIC,
    allocation_budget,
    study_monitored_pair,
    study_sequential,
    study_signal,
)
from evalhub.services.gold import GOLD_NEEDS_REFERENCE, GoldItem, gold_comparisons_create
from trainer.models import FineTuneRun, Split

ERROR_NAME_EMPTY = "A study needs a name."
ERROR_NAME_TAKEN = "A study named {name!r} already exists."
ERROR_NAME_REVEALS = "Raters see the study name; it must not name a system, run or model: {found}."
ERROR_TOO_FEW_SYSTEMS = "A study compares at least two systems; got {count}."
ERROR_GOLD_NEEDS_REFERENCE = "Gold item {item}: " + GOLD_NEEDS_REFERENCE
ERROR_GOLD_SYSTEM_COMPARED = "System {name!r} holds gold answers and cannot be compared."
ERROR_OVERLAP = "Overlap (raters per comparison) must be at least 1; got {overlap}."
ERROR_OVERLAP_LOWERED = "Overlap can only be raised, from {current}; got {overlap}."
ERROR_PROMPT_COUNT = "The number of prompts must be at least 1; got {count}."
ERROR_NO_PROMPTS = "No {split} prompt has an output from every chosen system ({systems})."
ERROR_SPLIT = (
    "A study is on one split's prompts: test, feedback, train or validation; got {split!r}."
)
ERROR_NOT_ENOUGH_PROMPTS = (
    "Only {available} prompts have an output from every chosen system; asked for {count}."
)
ERROR_TOO_FEW_RATERS = (
    "Each comparison needs {overlap} distinct raters; the study would have {count}."
)
ERROR_INACTIVE_RATER = "Rater {username!r} is not an active account."
ERROR_CRITERION = "Criterion names must be 1 to 50 characters and distinct: {name!r}."
ERROR_TOO_MANY_CRITERIA = "At most {limit} criteria; got {count}."
ERROR_STATUS_UNKNOWN = "Unknown study status {status!r}."
ERROR_STATUS_TRANSITION = "A {current} study cannot be moved to {target}."
ERROR_OPEN_WITHOUT_RATERS = "Add raters before opening the study."
ERROR_STUDY_CLOSED = "Study {name!r} is closed."
ERROR_SIGNAL_UNKNOWN = (
    "Unknown signal {signal!r}: use 'metric' or 'judge:<name>' with the name of a model judge."
)
ERROR_SIGNAL_AFTER_DRAWS = (
    "The adaptive study {name!r} has given out judgments already: its predictions were fixed "
    "before the first one, so its signal can no longer change."
)
ERROR_ALLOCATION = "Unknown allocation {allocation!r}; use uniform or adaptive."
ERROR_ADAPTIVE_SYSTEMS = (
    "Adaptive allocation compares two systems (an adapter and its base); got {count}."
)
ERROR_ADAPTIVE_AT_LARGE = (
    "Adaptive allocation gives a verdict about the study's own raters; it cannot speak for "
    "raters at large."
)
ERROR_MIN_GOLD_ACCURACY = "The minimum gold accuracy must be between 0 and 1; got {value}."
ERROR_MIN_MEDIAN_SECONDS = "The minimum median seconds per item must be at least 0; got {value}."
ERROR_MARGIN = "The equivalence margin must be at least 0 and below 0.5; got {margin}."

MAX_CRITERIA = 10
TRANSITIONS = {
    StudyStatus.DRAFT: {StudyStatus.OPEN, StudyStatus.CLOSED},
    StudyStatus.OPEN: {StudyStatus.PAUSED, StudyStatus.CLOSED},
    StudyStatus.PAUSED: {StudyStatus.OPEN, StudyStatus.CLOSED},
    StudyStatus.CLOSED: {StudyStatus.OPEN},
}


class StudyError(ValueError):
    """Bad input for a study; the message is one of the constants above, filled in."""


def _clean_criteria(criteria: Iterable[str]) -> list[str]:
    cleaned: list[str] = []
    for name in criteria:
        name = name.strip()
        if not 1 <= len(name) <= 50 or name.lower() in {c.lower() for c in cleaned}:
            raise StudyError(ERROR_CRITERION.format(name=name))
        cleaned.append(name)
    if len(cleaned) > MAX_CRITERIA:
        raise StudyError(ERROR_TOO_MANY_CRITERIA.format(limit=MAX_CRITERIA, count=len(cleaned)))
    return cleaned


def _check_raters(raters: Iterable[AbstractBaseUser]) -> list[AbstractBaseUser]:
    unique = {r.pk: r for r in raters}
    for rater in unique.values():
        if not rater.is_active:
            raise StudyError(ERROR_INACTIVE_RATER.format(username=rater.get_username()))
    return list(unique.values())


def _check_gold(items: Sequence[GoldItem], show_reference: bool) -> None:
    for number, item in enumerate(items, start=1):
        if show_reference and not item.reference.strip():
            raise StudyError(ERROR_GOLD_NEEDS_REFERENCE.format(item=number))


def _identity_names(systems: Sequence[System], run: FineTuneRun | None) -> set[str]:
    """Names that would tell a rater what is being compared (3+ characters, lower case)."""
    names = {run.name, run.base_model.name} if run else set()
    for system in systems:
        names.add(system.name)
        if system.run_id:
            names.add(system.run.name)
        if system.base_model_id:
            names.add(system.base_model.name)
    return {n.lower() for n in names if len(n) >= 3}


def split_prompts(split: str) -> Q:
    """The prompts of one split. A prompt that no dataset example stands behind (imported
    outputs, gold items) counts as a test prompt: nothing shows it may train."""
    if split == Split.TEST:
        return Q(example__split=Split.TEST) | Q(example__isnull=True)
    return Q(example__split=split)


def _choose_prompts(
    systems: Sequence[System], count: int | None, rng: random.Random, split: str
) -> list[int]:
    ids = list(
        Prompt.objects.filter(split_prompts(split))
        .annotate(covered=Count("outputs", filter=Q(outputs__system__in=systems), distinct=True))
        .filter(covered=len(systems))
        .order_by("id")
        .values_list("id", flat=True)
    )
    if not ids:
        names = ", ".join(s.name for s in systems)
        raise StudyError(ERROR_NO_PROMPTS.format(split=split, systems=names))
    if count is None:
        return ids
    if count > len(ids):
        raise StudyError(ERROR_NOT_ENOUGH_PROMPTS.format(available=len(ids), count=count))
    return sorted(rng.sample(ids, count))


def _assign(study: Study, raters: Sequence[AbstractBaseUser]) -> list[Assignment]:
    """Create the assignments that complete the study for these raters (plus existing ones).

    An adaptive study gives out its comparisons one draw at a time
    (``evalhub.services.allocation``); here its raters get only their gold items, placed where
    a uniform study of the same budget would put them, so gold keeps its rate."""
    adaptive = study.allocation == Allocation.ADAPTIVE
    comparisons = list(
        Comparison.objects.filter(
            study=study, **({"is_gold": True} if adaptive else {})
        ).select_related("output_a", "output_b")
    )
    by_id = {c.pk: c for c in comparisons}
    items = [
        blinding.Item(
            key=c.pk, first=c.output_a.system_id, second=c.output_b.system_id, everyone=c.is_gold
        )
        for c in comparisons
    ]
    existing = []
    placed_before = Assignment.objects.filter(comparison__study=study).select_related(
        "comparison__output_a", "comparison__output_b"
    )
    for a in placed_before:
        left, _ = a.sides()
        existing.append(
            blinding.Placed(
                item=a.comparison_id, rater=a.rater_id, left=left.system_id, position=a.position
            )
        )
    raters_now = {p.rater for p in existing} | {r.pk for r in raters}
    # An adaptive study draws its raters per judgment; its overlap only sets its budget.
    if not adaptive and raters_now and len(raters_now) < study.overlap:
        raise StudyError(ERROR_TOO_FEW_RATERS.format(overlap=study.overlap, count=len(raters_now)))
    study.raters.add(*raters)
    plan = blinding.plan_assignments(
        items=items, raters=raters_now, overlap=study.overlap, seed=study.seed, existing=existing
    )
    if adaptive:
        share = math.ceil(allocation_budget(study=study) / max(len(raters_now), 1))
        plan = _spread_gold(plan, share=share)
    new = []
    for placed in plan:
        comparison = by_id[placed.item]
        left = (
            comparison.output_a
            if placed.left == comparison.output_a.system_id
            else comparison.output_b
        )
        new.append(
            Assignment(
                comparison=comparison,
                rater_id=placed.rater,
                left_output=left,
                position=placed.position,
                token=blinding.new_token(),
            )
        )
    return Assignment.objects.bulk_create(new)


def _spread_gold(plan: list[blinding.Placed], *, share: int) -> list[blinding.Placed]:
    """Gold positions spread over a rater's ``share`` of regular items as in a uniform queue:
    the k-th of G gold items at ⌈(k + 1)(share + G) / (G + 1)⌉ − 1."""
    by_rater: dict = {}
    for placed in sorted(plan, key=lambda p: p.position):
        by_rater.setdefault(placed.rater, []).append(placed)
    spread = []
    for placed_items in by_rater.values():
        gold = len(placed_items)
        for k, placed in enumerate(placed_items):
            slot = math.ceil((k + 1) * (share + gold) / (gold + 1)) - 1
            spread.append(dataclasses.replace(placed, position=slot))
    return spread


@transaction.atomic
def study_create(
    *,
    name: str,
    systems: Sequence[System],
    prompts: int | None = None,
    raters: Sequence[AbstractBaseUser] = (),
    overlap: int = 2,
    criteria: Sequence[str] = (),
    guidelines: str = "",
    show_reference: bool = False,
    gold: Sequence[GoldItem] = (),
    run: FineTuneRun | None = None,
    created_by: AbstractBaseUser | None = None,
    seed: int | None = None,
    stop_when_decided: bool = False,
    equivalence_margin: float = DEFAULT_MARGIN,
    raters_at_large: bool = False,
    allocation: str = Allocation.UNIFORM,
    min_gold_accuracy: float = DEFAULT_MIN_GOLD_ACCURACY,
    min_median_seconds: float = DEFAULT_MIN_MEDIAN_SECONDS,
    split: str = Split.TEST,
) -> Study:
    """Create a study: every pair of ``systems`` on every chosen prompt becomes a comparison.

    The prompts come from one ``split``: test (the default; judgments decide, never train) or
    feedback (judgments may train the next adapter: ``evalhub.services.preferences``).
    ``prompts`` is how many prompts to sample (seeded) among those every system answered, or
    None for all. ``gold`` items (parsed by ``evalhub.services.gold``) go to every rater, mixed
    in unseen. Raters get their blinded assignments at once (or later: ``study_add_raters``).
    ``stop_when_decided`` pauses the study once its sequential verdict is reached (see
    ``study_stop_if_decided``); ``equivalence_margin`` bounds the "equivalent" verdict;
    ``raters_at_large`` makes the verdict speak for raters beyond the study's own.
    ``allocation`` "adaptive" gives judgments out where they say most (two systems only; each
    comparison keeps the metric's prediction it had at creation). ``min_gold_accuracy`` and
    ``min_median_seconds`` are the gate a rater must meet for their judgments to count in the
    verdict (0 checks nothing; see ``evalhub.analysis.rater_quality``).
    """
    name = name.strip()
    if not name:
        raise StudyError(ERROR_NAME_EMPTY)
    if Study.objects.filter(name=name).exists():
        raise StudyError(ERROR_NAME_TAKEN.format(name=name))
    systems = sorted({s.pk: s for s in systems}.values(), key=lambda s: s.pk)
    if len(systems) < 2:
        raise StudyError(ERROR_TOO_FEW_SYSTEMS.format(count=len(systems)))
    for system in systems:
        if system.kind in GOLD_KINDS:
            raise StudyError(ERROR_GOLD_SYSTEM_COMPARED.format(name=system.name))
    revealed = sorted(n for n in _identity_names(systems, run) if n in name.lower())
    if revealed:
        raise StudyError(ERROR_NAME_REVEALS.format(found=", ".join(revealed)))
    if overlap < 1:
        raise StudyError(ERROR_OVERLAP.format(overlap=overlap))
    if prompts is not None and prompts < 1:
        raise StudyError(ERROR_PROMPT_COUNT.format(count=prompts))
    if not 0 <= equivalence_margin < 0.5:
        raise StudyError(ERROR_MARGIN.format(margin=equivalence_margin))
    if not 0 <= min_gold_accuracy <= 1:
        raise StudyError(ERROR_MIN_GOLD_ACCURACY.format(value=min_gold_accuracy))
    if not min_median_seconds >= 0:
        raise StudyError(ERROR_MIN_MEDIAN_SECONDS.format(value=min_median_seconds))
    if allocation not in Allocation.values:
        raise StudyError(ERROR_ALLOCATION.format(allocation=allocation))
    if split not in Split.values:
        raise StudyError(ERROR_SPLIT.format(split=split))
    if allocation == Allocation.ADAPTIVE and len(systems) != 2:
        raise StudyError(ERROR_ADAPTIVE_SYSTEMS.format(count=len(systems)))
    if allocation == Allocation.ADAPTIVE and raters_at_large:
        raise StudyError(ERROR_ADAPTIVE_AT_LARGE)
    criteria = _clean_criteria(criteria)
    raters = _check_raters(raters)
    _check_gold(gold, show_reference)

    seed = secrets.randbelow(2**31) if seed is None else seed
    rng = random.Random(seed)
    prompt_ids = _choose_prompts(systems, prompts, rng, split)

    study = Study.objects.create(
        name=name,
        run=run,
        criteria=criteria,
        guidelines=guidelines,
        show_reference=show_reference,
        overlap=overlap,
        seed=seed,
        stop_when_decided=stop_when_decided,
        equivalence_margin=equivalence_margin,
        raters_at_large=raters_at_large,
        allocation=allocation,
        min_gold_accuracy=min_gold_accuracy,
        min_median_seconds=min_median_seconds,
        created_by=created_by,
    )
    study.systems.set(systems)

    outputs = {
        (o.prompt_id, o.system_id): o
        for o in Output.objects.filter(prompt_id__in=prompt_ids, system__in=systems)
    }
    Comparison.objects.bulk_create(
        Comparison(
            study=study,
            prompt_id=prompt_id,
            output_a=outputs[(prompt_id, x.pk)],
            output_b=outputs[(prompt_id, y.pk)],
        )
        for prompt_id in prompt_ids
        for x, y in itertools.combinations(systems, 2)
    )
    if allocation == Allocation.ADAPTIVE:
        _store_predictions(study)
    if gold:
        dataset_id = run.dataset_id if run else Prompt.objects.get(pk=prompt_ids[0]).dataset_id
        gold_comparisons_create(study=study, items=list(gold), dataset_id=dataset_id, rng=rng)
    if raters:
        _assign(study, raters)
    return study


def _store_predictions(study: Study) -> None:
    """Fix each comparison's predicted outcome (the metric's, ½ where none is scored) before
    any judgment, as the adaptive estimate requires."""
    _, predictions = study_signal(study=study, pair=study_monitored_pair(study=study))
    comparisons = list(Comparison.objects.filter(study=study, is_gold=False))
    for comparison in comparisons:
        comparison.prediction = predictions.get(comparison.pk, 0.5)
    Comparison.objects.bulk_update(comparisons, ["prediction"])


@transaction.atomic
def study_set_signal(*, study: Study, signal: str) -> Study:
    """Choose the study's cheap signal: "metric" or "judge:<name>". The prediction-powered
    interval reads it at once; an adaptive study, which fixes its predictions before its first
    draw, takes the new signal's predictions only while it has made none."""
    judge = judge_signal_name(signal)
    if signal != SIGNAL_METRIC and (not judge or not Judge.objects.filter(name=judge).exists()):
        raise StudyError(ERROR_SIGNAL_UNKNOWN.format(signal=signal))
    study = Study.objects.select_for_update().get(pk=study.pk)
    if study.allocation == Allocation.ADAPTIVE and study.draws.exists():
        raise StudyError(ERROR_SIGNAL_AFTER_DRAWS.format(name=study.name))
    study.signal = signal
    study.save(update_fields=["signal"])
    if study.allocation == Allocation.ADAPTIVE:
        _store_predictions(study)
    return study


@transaction.atomic
def study_add_raters(
    *, study: Study, raters: Sequence[AbstractBaseUser], overlap: int | None = None
) -> list[Assignment]:
    """Give new raters work under the same blinding rules; optionally raise the overlap.

    Existing assignments never move (a rater may have one open or judged). Without a higher
    overlap, new raters fill only the gaps: comparisons short of raters, and every gold item.
    """
    study = Study.objects.select_for_update().get(pk=study.pk)
    if study.status == StudyStatus.CLOSED:
        raise StudyError(ERROR_STUDY_CLOSED.format(name=study.name))
    raters = _check_raters(raters)
    if overlap is not None and overlap != study.overlap:
        if overlap < study.overlap:
            raise StudyError(ERROR_OVERLAP_LOWERED.format(current=study.overlap, overlap=overlap))
        study.overlap = overlap
        study.save(update_fields=["overlap"])
    return _assign(study, raters)


@transaction.atomic
def study_set_status(*, study: Study, status: str) -> Study:
    """Open, pause, close (or reopen) a study. Raters can submit only while it is open.

    Reopening a study that stopped itself means the manager wants more judgments: it no longer
    stops by itself (else the next judgment would pause it again)."""
    if status not in StudyStatus.values:
        raise StudyError(ERROR_STATUS_UNKNOWN.format(status=status))
    study = Study.objects.select_for_update().get(pk=study.pk)
    if status == study.status:
        return study
    if status not in TRANSITIONS[study.status]:
        raise StudyError(ERROR_STATUS_TRANSITION.format(current=study.status, target=status))
    if (
        status == StudyStatus.OPEN
        and not study.raters.exists()
        and not Assignment.objects.filter(comparison__study=study).exists()
    ):
        raise StudyError(ERROR_OPEN_WITHOUT_RATERS)
    study.status = status
    fields = ["status"]
    if status == StudyStatus.OPEN and study.stopped_at is not None:
        study.stopped_at = None
        study.stop_when_decided = False
        fields += ["stopped_at", "stop_when_decided"]
    study.save(update_fields=fields)
    return study


def study_stop_if_decided(*, study: Study) -> Sequential | None:
    """After a judgment: pause an open study that may stop itself once its verdict is reached,
    recording how many judgments decided it. Returns the sequential state it read, if any.
    One conditional UPDATE, so no transaction of its own: it runs inside the judgment's."""
    if not study.stop_when_decided or study.status != StudyStatus.OPEN:
        return None
    state = study_sequential(study=study)
    if state is None or state.verdict == UNDECIDED:
        return state
    Study.objects.filter(pk=study.pk, status=StudyStatus.OPEN).update(
        status=StudyStatus.PAUSED, stopped_at=state.judgments
    )
    study.status, study.stopped_at = StudyStatus.PAUSED, state.judgments
    return state
