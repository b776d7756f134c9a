"""Everything the report shows about a study, computed from plain records in one call."""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from evalhub.analysis.agreement import AgreementSummary, Coefficient, agreement_summary
from evalhub.analysis.agreement_intervals import (
    AgreementIntervals,
    Drift,
    agreement_intervals,
    rater_drift,
)
from evalhub.analysis.base import (
    BOOTSTRAP_RESAMPLES,
    MIN_ITEMS,
    MODEL_RESAMPLES,
    REASON_FEW_ITEMS,
    Insufficient,
    Interval,
)
from evalhub.analysis.bias import BiasSummary, length_bias, position_bias
from evalhub.analysis.criteria import CriterionSummary, criterion_summary
from evalhub.analysis.length import LengthControlled, PairLength, length_controlled
from evalhub.analysis.metric_agreement import (
    MetricAgreement,
    human_preferences,
    metric_agreement,
)
from evalhub.analysis.ranking import BT_RESAMPLES, Ranking, ranking
from evalhub.analysis.raters import RaterSummary, rater_summaries
from evalhub.analysis.records import Rating
from evalhub.analysis.ties import TieModel, TiePair, tie_model
from evalhub.analysis.winrate import PairSummary, pair_summary


@dataclass(frozen=True, slots=True)
class StudyAnalysis:
    """``judgments`` and ``items`` count the evaluated (non-gold) ones."""

    judgments: int
    items: int
    gold_judgments: int
    pairs: list[PairSummary]
    criteria: list[CriterionSummary]
    agreement: AgreementSummary
    raters: list[RaterSummary]
    position_bias: BiasSummary
    length_bias: BiasSummary
    ranking: Ranking | Insufficient
    metrics: list[MetricAgreement]
    ties: TieModel | Insufficient
    length_controlled: list[PairLength]
    agreement_intervals: AgreementIntervals
    drift: Drift


def compared_pairs(ratings: Sequence[Rating], systems: Sequence[str]) -> list[tuple[str, str]]:
    """The pairs of systems that were compared, each as (system, opponent) with the system that
    comes first in ``systems`` (the caller's order of interest, e.g. adapter before base) first."""
    order = {s: i for i, s in enumerate(systems)}

    def rank(system: str) -> tuple[int, str]:
        return (order.get(system, len(order)), system)

    seen = {tuple(sorted((r.system_a, r.system_b), key=rank)) for r in ratings}
    return sorted(seen, key=lambda pair: (rank(pair[0]), rank(pair[1])))


def judged_systems(ratings: Sequence[Rating], systems: Sequence[str]) -> list[str]:
    """The systems that have judgments, in ``systems``' order, then any others by name."""
    present = {r.system_a for r in ratings} | {r.system_b for r in ratings}
    return [s for s in systems if s in present] + sorted(present - set(systems))


def analyse_study(
    ratings: Sequence[Rating],
    *,
    systems: Sequence[str],
    criteria: Sequence[str],
    item_metrics: Mapping[str, Mapping[int, tuple[float | None, float | None]]],
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
    bt_resamples: int = BT_RESAMPLES,
    model_resamples: int = MODEL_RESAMPLES,
) -> StudyAnalysis:
    """``item_metrics[metric][item]`` = (value for output a, value for output b). ``ratings``
    come in the order they were made (rater drift reads it).

    Gold items (``Rating.gold`` set) check the raters, not the systems: they count for gold
    accuracy and position bias only, never for win rates, criteria, agreement, ranking, length
    bias or the metric comparison."""
    evaluated = [r for r in ratings if r.gold is None]
    pairs = compared_pairs(evaluated, systems)
    # Each pair's statistics only look at that pair's judgments: hand each its own list.
    by_pair: dict[frozenset[str], list[Rating]] = defaultdict(list)
    for r in evaluated:
        by_pair[frozenset((r.system_a, r.system_b))].append(r)
    humans = human_preferences(evaluated)
    judged = judged_systems(evaluated, systems)
    return StudyAnalysis(
        judgments=len(evaluated),
        items=len({r.item for r in evaluated}),
        gold_judgments=len(ratings) - len(evaluated),
        pairs=[
            pair_summary(by_pair[frozenset((x, y))], x, y, seed=seed, resamples=resamples)
            for x, y in pairs
        ],
        criteria=[
            criterion_summary(by_pair[frozenset((x, y))], c, x, y, seed=seed, resamples=resamples)
            for x, y in pairs
            for c in criteria
        ],
        agreement=agreement_summary(evaluated),
        raters=rater_summaries(ratings),
        position_bias=position_bias(ratings),
        length_bias=length_bias(evaluated),
        ranking=ranking(evaluated, judged, seed=seed, resamples=bt_resamples),
        metrics=[
            metric_agreement(evaluated, values, m, humans=humans)
            for m, values in item_metrics.items()
        ],
        ties=tie_model(evaluated, judged, pairs, seed=seed, resamples=model_resamples),
        length_controlled=[
            PairLength(
                x,
                y,
                length_controlled(
                    by_pair[frozenset((x, y))], x, y, seed=seed, resamples=model_resamples
                ),
            )
            for x, y in pairs
        ],
        agreement_intervals=agreement_intervals(evaluated, seed=seed, resamples=model_resamples),
        drift=rater_drift(evaluated, seed=seed, resamples=model_resamples),
    )


@dataclass(frozen=True, slots=True)
class VerdictDetails:
    """The study page's summary of one pair, ``system`` against ``opponent``: the tie-aware
    model's row, the length-controlled win rate, and agreement over every evaluated judgment.
    Each number is the one :func:`analyse_study` gives for the same ratings and seed."""

    system: str
    opponent: str
    ties: TiePair | Insufficient
    length: LengthControlled | Insufficient
    krippendorff_alpha: Coefficient | Insufficient
    krippendorff_alpha_interval: Interval | Insufficient
    fleiss_kappa: Coefficient | Insufficient
    fleiss_kappa_interval: Interval | Insufficient


def verdict_details(
    ratings: Sequence[Rating],
    *,
    systems: Sequence[str],
    pair: tuple[str, str],
    seed: int = 0,
    resamples: int = MODEL_RESAMPLES,
) -> VerdictDetails:
    """:class:`VerdictDetails` of ``pair`` (system, opponent); gold items are left out as in
    :func:`analyse_study`, and the tie model is fitted to every judged system, as there."""
    evaluated = [r for r in ratings if r.gold is None]
    system, opponent = pair
    model = tie_model(
        evaluated, judged_systems(evaluated, systems), [pair], seed=seed, resamples=resamples
    )
    if isinstance(model, TieModel):
        # The pair has no row when none of its judgments are in: too few prompts, zero.
        model = model.pairs[0] if model.pairs else Insufficient(REASON_FEW_ITEMS, 0, MIN_ITEMS)
    agreement = agreement_summary(evaluated)
    intervals = agreement_intervals(evaluated, seed=seed, resamples=resamples)
    return VerdictDetails(
        system=system,
        opponent=opponent,
        ties=model,
        length=length_controlled(evaluated, system, opponent, seed=seed, resamples=resamples),
        krippendorff_alpha=agreement.krippendorff_alpha,
        krippendorff_alpha_interval=intervals.krippendorff_alpha,
        fleiss_kappa=agreement.fleiss_kappa,
        fleiss_kappa_interval=intervals.fleiss_kappa,
    )
