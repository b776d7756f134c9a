"""How far a model judge can be trusted on this study: its verdicts against the experts'.

A judge sees every comparison twice, once with output a first ("ab") and once with output b
first ("ba"). Each of those verdicts is a :class:`Rating` whose ``left`` is the side shown
first, so the experts' position and length bias functions measure the judge's too. The judge's
call on a comparison is the choice both orders agree on; when they disagree the call is a tie
and the comparison counts as a flip (the judge's position bias). A comparison judged in one
order only has no call yet.

The experts' call on a comparison is a reviewer's final call where there is one, else the single
most common verdict of its raters (:func:`evalhub.analysis.raters.plurality`; a split has no
call). "Both bad" reads as a tie here, the judge having no such choice; the experts'
agreement among themselves (the ceiling) is computed on the same three labels: the mean of
every pair of raters' Cohen's κ, weighted by the items they share.

Judge–expert Cohen's κ over the comparisons both decided, with an item-bootstrap percentile
interval (seeded). The stand-in rule (``stand_in``), documented in the README:

- at least ``MIN_DECIDED`` comparisons decided by both the experts and the judge;
- the lower end of the judge–expert κ interval reaches ``CEILING_SHARE`` of the experts' own κ
  (``KAPPA_WITHOUT_CEILING`` when the experts' κ cannot be computed), and never less than
  ``KAPPA_FLOOR``;
- the judge flips with the order on at most ``MAX_FLIP_RATE`` of the comparisons.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from evalhub.analysis.agreement import Coefficient, cohen_kappa, labels_by_item, rater_pairs
from evalhub.analysis.base import (
    CONFIDENCE,
    MIN_ITEMS,
    MIN_SHARED_ITEMS,
    MODEL_RESAMPLES,
    REASON_FEW_ITEMS,
    REASON_FEW_SHARED,
    Insufficient,
    Interval,
    resample_counts,
)
from evalhub.analysis.bias import BiasSummary, length_bias, position_bias
from evalhub.analysis.raters import plurality
from evalhub.analysis.records import BOTH_BAD, TIE, A, B, Rating
from evalhub.judging.pairwise import combine

LABELS = (A, B, TIE)
# The order a judge was shown a comparison in: output a first, or b first (a and b as the
# records name them, which may be the report's orientation rather than the stored one).
# Their calls follow the judging core's rule: agreement gives the choice, a flip a tie.
AB, BA = "ab", "ba"
FIRST_SHOWN = {AB: A, BA: B}

MIN_DECIDED = 50
CEILING_SHARE = 0.8
KAPPA_WITHOUT_CEILING = 0.6
KAPPA_FLOOR = 0.2
MAX_FLIP_RATE = 0.2
INTERVAL_METHOD = "comparison bootstrap percentile"
CEILING_METHOD = "mean of the expert pairs' Cohen's kappa, weighted by shared comparisons"

MAY = "may stand in for the experts"
MAY_NOT = "may not stand in for the experts"
REASON_FEW_DECIDED = "{n} comparisons decided by both the experts and the judge, fewer than {need}"
REASON_ENOUGH_DECIDED = "{n} comparisons decided by both the experts and the judge"
REASON_NO_KAPPA = "judge–expert kappa cannot be computed: {why}"
REASON_KAPPA_LOW = "judge–expert kappa's lower bound {low:.2f} is below {needed:.2f} ({basis})"
REASON_KAPPA_MET = "judge–expert kappa's lower bound {low:.2f} reaches {needed:.2f} ({basis})"
BASIS_CEILING = f"{CEILING_SHARE:.0%} of the experts' own kappa {{ceiling:.2f}}"
BASIS_NO_CEILING = "the experts' own kappa is unknown, so the absolute bar"
BASIS_FLOOR = "the floor below which agreement is at most slight"
REASON_FLIPS = "the judge flips with the order on {rate:.0%} of comparisons, more than {most:.0%}"
REASON_FLIPS_MET = (
    "the judge flips with the order on {rate:.0%} of comparisons (at most {most:.0%})"
)
REASON_NO_FLIPS = "no comparison was judged in both orders"

# Landis & Koch (1977), "The measurement of observer agreement for categorical data".
STRENGTH = ((0.8, "almost perfect"), (0.6, "substantial"), (0.4, "moderate"), (0.2, "fair"))
STRENGTH_SLIGHT, STRENGTH_NONE = "slight", "none beyond chance"


@dataclass(frozen=True, slots=True)
class Disagreement:
    item: int
    judge: str
    experts: str
    judge_ab: str
    judge_ba: str


@dataclass(frozen=True, slots=True)
class StandIn:
    may_stand_in: bool
    verdict: str
    reasons: list[str]


@dataclass(frozen=True, slots=True)
class Calibration:
    """``verdicts``: the judge's parsed verdicts (both orders); ``judged``: comparisons with
    both orders; ``flips``: those whose verdict changes with the order; ``decided``: judged
    comparisons the experts decided too. ``confusion[i][j]``: comparisons the experts called
    ``LABELS[i]`` and the judge ``LABELS[j]``. The biases are the judge's per verdict, and the
    experts' per judgment, alike."""

    verdicts: int
    judged: int
    flips: int
    flip_rate: float | None
    decided: int
    kappa: Coefficient | Insufficient
    kappa_interval: Interval | Insufficient
    strength: str | None
    expert_kappa: Coefficient | Insufficient
    confusion: list[list[int]]
    position_bias: BiasSummary
    length_bias: BiasSummary
    expert_position_bias: BiasSummary
    expert_length_bias: BiasSummary
    stand_in: StandIn
    disagreements: list[Disagreement]


def three_way(verdict: str) -> str:
    """A verdict on the judge's three labels: "both bad" is a tie."""
    return TIE if verdict == BOTH_BAD else verdict


def judge_orders(judge: Sequence[Rating]) -> dict[int, dict[str, str]]:
    """item -> order ("ab" | "ba") -> the judge's choice, from its verdicts (``left`` the side
    shown first)."""
    orders: dict[int, dict[str, str]] = defaultdict(dict)
    for r in judge:
        orders[r.item][AB if r.left == A else BA] = r.verdict
    return orders


def judge_calls(judge: Sequence[Rating]) -> dict[int, tuple[str, bool]]:
    """item -> (the judge's call, whether it flipped), for the items judged in both orders
    (the rule is :func:`evalhub.judging.pairwise.combine`'s)."""
    return {
        item: combine(orders[AB], orders[BA])
        for item, orders in judge_orders(judge).items()
        if AB in orders and BA in orders
    }


def expert_calls(experts: Sequence[Rating], final_calls: Sequence[Rating]) -> dict[int, str]:
    """item -> the experts' call on three labels: the final call, else the raters' majority."""
    votes: dict[int, list[str]] = defaultdict(list)
    for r in experts:
        votes[r.item].append(three_way(r.verdict))
    calls = {item: plurality(v) for item, v in votes.items()}
    calls.update({r.item: three_way(r.verdict) for r in final_calls})
    return {item: call for item, call in calls.items() if call is not None}


def expert_ceiling(experts: Sequence[Rating]) -> Coefficient | Insufficient:
    """The experts' agreement among themselves on three labels: every pair's Cohen's κ over
    the items they share, averaged with the shared items as weights."""
    three = [Rating(r.item, r.rater, r.system_a, r.system_b, three_way(r.verdict)) for r in experts]
    kappas = [cohen_kappa(x, y) for _, _, x, y in rater_pairs(labels_by_item(three))]
    measured = [k for k in kappas if isinstance(k, Coefficient)]
    if not measured:
        most = max(kappas, key=lambda k: k.n, default=None)
        return most or Insufficient(REASON_FEW_SHARED, 0, MIN_SHARED_ITEMS)
    n = sum(k.n for k in measured)
    return Coefficient(sum(k.value * k.n for k in measured) / n, n, CEILING_METHOD)


def kappa_interval(
    first: Sequence[str],
    second: Sequence[str],
    *,
    seed: int = 0,
    resamples: int = MODEL_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> Interval | Insufficient:
    """Percentile interval of Cohen's κ over ``LABELS``, resampling the paired items: each
    resample's confusion table is its draw counts times the items' cells."""
    k = len(first)
    if k < MIN_ITEMS:
        return Insufficient(REASON_FEW_ITEMS, k, MIN_ITEMS)
    index = {label: i for i, label in enumerate(LABELS)}
    cells = np.zeros((k, len(LABELS) ** 2))
    cell = [index[x] * len(LABELS) + index[y] for x, y in zip(first, second, strict=True)]
    cells[np.arange(k), cell] = 1
    values = []
    for drawn in resample_counts(k, resamples, seed=seed):
        table = (drawn @ cells).reshape(-1, len(LABELS), len(LABELS)) / k
        observed = np.trace(table, axis1=1, axis2=2)
        expected = (table.sum(axis=2) * table.sum(axis=1)).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            values.append((observed - expected) / (1 - expected))
    flat = np.concatenate(values)
    flat = flat[np.isfinite(flat)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(flat, [tail, 100 - tail])
    return Interval(float(low), float(high), INTERVAL_METHOD)


def strength(kappa: float) -> str:
    """Landis and Koch's word for a κ."""
    if kappa <= 0:
        return STRENGTH_NONE
    return next((word for bound, word in STRENGTH if kappa > bound), STRENGTH_SLIGHT)


def stand_in(
    *,
    decided: int,
    interval: Interval | Insufficient,
    kappa: Coefficient | Insufficient,
    ceiling: Coefficient | Insufficient,
    flip_rate: float | None,
) -> StandIn:
    """The documented rule: every condition's figure, and whether all are met."""
    reasons, met = [], []
    if decided < MIN_DECIDED:
        reasons.append(REASON_FEW_DECIDED.format(n=decided, need=MIN_DECIDED))
    else:
        met.append(REASON_ENOUGH_DECIDED.format(n=decided))
    if isinstance(interval, Insufficient) or isinstance(kappa, Insufficient):
        why = kappa.reason if isinstance(kappa, Insufficient) else interval.reason
        reasons.append(REASON_NO_KAPPA.format(why=why))
    else:
        if isinstance(ceiling, Coefficient):
            needed, basis = (
                CEILING_SHARE * ceiling.value,
                BASIS_CEILING.format(ceiling=ceiling.value),
            )
        else:
            needed, basis = KAPPA_WITHOUT_CEILING, BASIS_NO_CEILING
        if needed < KAPPA_FLOOR:
            needed, basis = KAPPA_FLOOR, BASIS_FLOOR
        text = REASON_KAPPA_MET if interval.low >= needed else REASON_KAPPA_LOW
        (met if interval.low >= needed else reasons).append(
            text.format(low=interval.low, needed=needed, basis=basis)
        )
    if flip_rate is None:
        reasons.append(REASON_NO_FLIPS)
    elif flip_rate > MAX_FLIP_RATE:
        reasons.append(REASON_FLIPS.format(rate=flip_rate, most=MAX_FLIP_RATE))
    else:
        met.append(REASON_FLIPS_MET.format(rate=flip_rate, most=MAX_FLIP_RATE))
    if reasons:
        return StandIn(False, MAY_NOT, reasons)
    return StandIn(True, MAY, met)


def calibrate(
    judge: Sequence[Rating],
    experts: Sequence[Rating],
    final_calls: Sequence[Rating] = (),
    *,
    seed: int = 0,
    resamples: int = MODEL_RESAMPLES,
) -> Calibration:
    """The judge's verdicts (one :class:`Rating` per order, ``left`` the side shown first)
    against the experts' judgments and the reviewers' final calls, none of them gold."""
    judge = [r for r in judge if r.gold is None]
    experts = [r for r in experts if r.gold is None]
    final_calls = [r for r in final_calls if r.gold is None]
    calls = judge_calls(judge)
    orders = judge_orders(judge)
    experts_call = expert_calls(experts, final_calls)
    decided = sorted(item for item in calls if item in experts_call)
    ours = [calls[item][0] for item in decided]
    theirs = [experts_call[item] for item in decided]
    kappa = cohen_kappa(theirs, ours)
    interval = kappa_interval(theirs, ours, seed=seed, resamples=resamples)
    ceiling = expert_ceiling(experts)
    flips = sum(flipped for _, flipped in calls.values())
    flip_rate = flips / len(calls) if calls else None
    confusion = [[0] * len(LABELS) for _ in LABELS]
    for x, y in zip(theirs, ours, strict=True):
        confusion[LABELS.index(x)][LABELS.index(y)] += 1
    return Calibration(
        verdicts=len(judge),
        judged=len(calls),
        flips=flips,
        flip_rate=flip_rate,
        decided=len(decided),
        kappa=kappa,
        kappa_interval=interval,
        strength=strength(kappa.value) if isinstance(kappa, Coefficient) else None,
        expert_kappa=ceiling,
        confusion=confusion,
        position_bias=position_bias(judge),
        length_bias=length_bias(judge),
        expert_position_bias=position_bias(experts),
        expert_length_bias=length_bias(experts),
        stand_in=stand_in(
            decided=len(decided),
            interval=interval,
            kappa=kappa,
            ceiling=ceiling,
            flip_rate=flip_rate,
        ),
        disagreements=[
            Disagreement(item, call, experts_call[item], orders[item][AB], orders[item][BA])
            for item, call, expert in zip(decided, ours, theirs, strict=True)
            if call != expert
        ],
    )


def adapter_outcomes(calls: Mapping[int, str], adapter_side: Mapping[int, str]) -> dict[int, float]:
    """The judge's calls as the adapter's outcome (1 won, ½ tie, 0 lost): the signal a
    prediction-powered interval or an adaptive study reads. ``adapter_side[item]`` is the side
    ("a" | "b") holding the adapter's output; items without one are left out."""
    return {
        item: 0.5 if call == TIE else float(call == adapter_side[item])
        for item, call in calls.items()
        if item in adapter_side
    }
